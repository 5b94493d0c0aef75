"""The gesture -> action map: what an :class:`Action` is, and its three sources.

An action comes from a mapping file (``--actions FILE``, TOML or JSON), from an ``--on
GESTURE=COMMAND`` flag, or from Python; each is checked here, before the camera opens, so a
bad entry is one :class:`rnn_jax.errors.ConfigError` line. Running actions is
:mod:`rnn_jax.live.actions` (its docstring has the file format and the firing rules).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnn_jax.errors import ConfigError

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_COOLDOWN_S = 1.0
_FILE_KEYS = {"timeout", "cooldown", "on"}
_ACTION_KEYS = {"command", "shell", "timeout", "cooldown"}

Callback = Callable[[Any], object]  # called with the GestureEvent that fired it


@dataclass(frozen=True)
class Action:
    """What to do when ``gesture`` starts: a command (argument list or shell string) or a callback."""

    gesture: str
    command: tuple[str, ...] | str | Callback
    shell: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    cooldown_s: float = DEFAULT_COOLDOWN_S
    origin: str = ""  # where it was defined, for error messages ("--on", "actions.toml")

    def __post_init__(self) -> None:
        where = f"{self.origin}: " if self.origin else ""
        if not isinstance(self.gesture, str) or not self.gesture.strip():
            raise ConfigError(f"{where}an action needs a gesture name")
        if not self.timeout_s > 0:
            raise ConfigError(f"{where}timeout for {self.gesture!r} must be > 0 seconds, got {self.timeout_s}")
        if not self.cooldown_s >= 0:
            raise ConfigError(f"{where}cooldown for {self.gesture!r} must be >= 0 seconds, got {self.cooldown_s}")
        if callable(self.command):
            if self.shell:
                raise ConfigError(f"{where}a Python callback for {self.gesture!r} cannot use the shell")
            return
        if self.shell and not isinstance(self.command, str):
            raise ConfigError(f"{where}shell = true for {self.gesture!r} needs the command as one string")
        if isinstance(self.command, str) and not self.shell:
            raise ConfigError(f"{where}the command for {self.gesture!r} must be an argument list without the shell")
        if not self.command or (isinstance(self.command, tuple) and not all(
                isinstance(a, str) and a for a in self.command)):
            raise ConfigError(f"{where}the command for {self.gesture!r} must be a non-empty list of "
                              "non-empty strings")

    @property
    def is_callback(self) -> bool:
        return callable(self.command)

    def describe(self) -> str | list[str]:
        """The command as it appears in outcomes (JSON-friendly)."""
        if self.is_callback:
            return f"<python {getattr(self.command, '__qualname__', type(self.command).__name__)}>"
        return self.command if isinstance(self.command, str) else list(self.command)


def _split(command: str, where: str, gesture: str) -> tuple[str, ...]:
    try:
        argv = tuple(shlex.split(command, posix=os.name != "nt"))
    except ValueError as exc:
        raise ConfigError(f"{where}cannot split the command for {gesture!r} ({exc}): {command!r}") from None
    if not argv:
        raise ConfigError(f"{where}empty command for {gesture!r}")
    return argv


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}{what} must be a number of seconds, got {value!r}")
    return float(value)


def make_action(gesture: str, spec: object, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                cooldown_s: float = DEFAULT_COOLDOWN_S, origin: str = "") -> Action:
    """One action from a mapping value: a command list, a command string (split, no shell),
    a Python callable, or a table ``{command, shell, timeout, cooldown}``."""
    where = f"{origin}: " if origin else ""
    shell = False
    if isinstance(spec, Mapping):
        unknown = set(spec) - _ACTION_KEYS
        if unknown:
            raise ConfigError(f"{where}unknown key(s) {sorted(unknown)} for {gesture!r}; "
                              f"use {sorted(_ACTION_KEYS)}")
        if "command" not in spec:
            raise ConfigError(f"{where}{gesture!r} has no command")
        shell = spec.get("shell", False)
        if not isinstance(shell, bool):
            raise ConfigError(f"{where}shell for {gesture!r} must be true or false, got {shell!r}")
        if "timeout" in spec:
            timeout_s = _number(spec["timeout"], f"timeout for {gesture!r}", where)
        if "cooldown" in spec:
            cooldown_s = _number(spec["cooldown"], f"cooldown for {gesture!r}", where)
        spec = spec["command"]
    command: tuple[str, ...] | str | Callback
    if callable(spec):
        command = spec
    elif isinstance(spec, str):
        command = spec if shell else _split(spec, where, gesture)
    elif isinstance(spec, (list, tuple)):
        if shell:
            raise ConfigError(f"{where}shell = true for {gesture!r} needs the command as one string")
        command = tuple(spec)  # type: ignore[arg-type]
    else:
        raise ConfigError(f"{where}the command for {gesture!r} must be a list of strings or a string, "
                          f"got {type(spec).__name__}")
    return Action(gesture, command, shell, timeout_s, cooldown_s, origin)


def parse_on(text: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
             cooldown_s: float = DEFAULT_COOLDOWN_S) -> Action:
    """``--on GESTURE=COMMAND``: the command is split into arguments like a shell would, run without one."""
    gesture, sep, command = text.partition("=")
    gesture = gesture.strip()
    if not sep or not gesture or not command.strip():
        raise ConfigError(f"--on wants GESTURE=COMMAND (e.g. --on 'like=notify-send hi'), got {text!r}")
    return make_action(gesture, command, timeout_s=timeout_s, cooldown_s=cooldown_s, origin="--on")


def _read_mapping(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"actions file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read actions file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    elif path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ConfigError(f"{path}: TOML needs Python >= 3.11 (tomllib); write the same mapping as "
                              "a .json file") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    else:
        raise ConfigError(f"{path}: actions file must end in .toml or .json")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object with an 'on' table")
    return data


def load_actions(path: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 cooldown_s: float = DEFAULT_COOLDOWN_S) -> list[Action]:
    """Read a mapping file (format: :mod:`rnn_jax.live.actions`); ConfigError (one line) when it is bad."""
    path = Path(path)
    data = _read_mapping(path)
    where = f"{path}: "
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise ConfigError(f"{where}unknown key(s) {sorted(unknown)}; use {sorted(_FILE_KEYS)}")
    if "timeout" in data:
        timeout_s = _number(data["timeout"], "timeout", where)
    if "cooldown" in data:
        cooldown_s = _number(data["cooldown"], "cooldown", where)
    table = data.get("on")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}needs a non-empty 'on' table mapping gestures to commands")
    return [make_action(str(g), spec, timeout_s=timeout_s, cooldown_s=cooldown_s, origin=str(path))
            for g, spec in table.items()]


def check_gestures(actions: Iterable[Action], known: Iterable[str]) -> None:
    """A mapped gesture the models cannot produce is a typo: say so before the camera opens."""
    names = sorted(set(known))
    for action in actions:
        if action.gesture not in names:
            where = f"{action.origin}: " if action.origin else ""
            raise ConfigError(f"{where}no model here recognises gesture {action.gesture!r}; "
                              f"known: {', '.join(names)}")

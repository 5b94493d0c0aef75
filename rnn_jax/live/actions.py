"""Gesture -> action: run a command (or a Python callback) when a gesture starts.

JAX-free, no extra dependency. Actions come from a mapping file (``--actions FILE``, TOML or
JSON), from ``--on GESTURE=COMMAND`` flags, or from Python (``iter_predictions(...,
on_gesture=...)``). The rules, the same for static and dynamic gestures:

- an action fires on its gesture's **started** event, for each hand (events carry the hand);
- **debounce**: a gesture must **end** (on that hand) before it can fire again there;
- **cooldown**: after firing, the action stays quiet for ``cooldown`` seconds (all hands);
- an action whose previous run is still going is skipped (``busy``), so commands never pile up;
- a command is an **argument list** run without a shell, unless the file says ``shell = true``;
  it gets ``timeout`` seconds, then it is killed (with its process group on POSIX);
- nothing blocks the frame loop: each run starts and is waited for on its own thread; the loop
  collects finished runs with :meth:`ActionRunner.poll`;
- every firing, skip and outcome is a dict (``{"action": GESTURE, "status": ...}``) that the
  live program writes to the JSONL and to stdout; ``--dry-run`` records ``dry-run`` and runs nothing.

Mapping file (TOML shown; JSON is the same structure)::

    timeout = 10      # seconds a command may run (default 10)
    cooldown = 1.0    # seconds between two firings of one action (default 1)

    [on]
    like = ["notify-send", "rnn-jax", "like"]          # argument list, no shell
    swipe_left = "xdotool key Left"                    # a string is split like a shell would (no shell runs)
    palm = { command = "echo palm >> log.txt", shell = true, cooldown = 3, timeout = 2 }
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_jax.errors import ConfigError
from rnn_jax.live.action_map import (
    DEFAULT_COOLDOWN_S,
    DEFAULT_TIMEOUT_S,
    Action,
    Callback,
    check_gestures,
    load_actions,
    make_action,
    parse_on,
)

__all__ = [  # the map's names are re-exported: rnn_jax.live.actions stays the one import for users
    "DEFAULT_COOLDOWN_S", "DEFAULT_TIMEOUT_S", "Action", "ActionRunner", "Callback", "build_runner",
    "check_gestures", "load_actions", "make_action", "parse_on", "print_outcomes",
]

_TAIL = 300  # characters of a failed command's stderr kept in its outcome


@dataclass
class _Run:
    action: Action
    record: dict[str, Any]
    thread: threading.Thread | None = None
    process: subprocess.Popen | None = None


@dataclass
class ActionRunner:
    """Fires :class:`Action` s on gesture events; outcomes are dicts, collected with :meth:`poll`.

    ``clock`` (seconds, monotonic) is injectable so cooldowns can be tested without waiting.
    """

    actions: Sequence[Action]
    dry_run: bool = False
    clock: Callable[[], float] = time.monotonic
    _by_gesture: dict[str, list[Action]] = field(init=False, repr=False)
    _active: set[tuple[str, int | None]] = field(init=False, default_factory=set)
    _last_fired: dict[int, float] = field(init=False, default_factory=dict)
    _running: dict[int, _Run] = field(init=False, default_factory=dict)
    _done: queue.SimpleQueue = field(init=False, default_factory=queue.SimpleQueue)
    fired: int = field(init=False, default=0)
    counts: dict[str, int] = field(init=False, default_factory=dict)  # status -> how many

    def __post_init__(self) -> None:
        self._by_gesture = {}
        for action in self.actions:
            self._by_gesture.setdefault(action.gesture, []).append(action)

    @property
    def gestures(self) -> tuple[str, ...]:
        return tuple(self._by_gesture)

    def handle(self, events: Iterable[Any]) -> list[dict[str, Any]]:
        """Feed one frame's gesture events; returns what was fired or skipped on this frame."""
        out: list[dict[str, Any]] = []
        for event in events:
            key = (event.label, event.hand)
            if event.kind == "ended":
                self._active.discard(key)
                continue
            if event.kind != "started" or key in self._active:
                continue  # debounce: the gesture has not ended on this hand since it last started
            self._active.add(key)
            for action in self._by_gesture.get(event.label, ()):
                out.append(self._fire(action, event))
        return out

    def _fire(self, action: Action, event: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"action": action.gesture, "frame": event.frame, "command": action.describe()}
        if event.hand is not None:
            record["hand"] = event.hand
        now = self.clock()
        ident = id(action)
        last = self._last_fired.get(ident)
        if last is not None and now - last < action.cooldown_s:
            return self._count({**record, "status": "skipped", "reason": "cooldown"})
        if ident in self._running:
            return self._count({**record, "status": "skipped", "reason": "busy"})
        self._last_fired[ident] = now
        self.fired += 1
        if self.dry_run:
            return self._count({**record, "status": "dry-run"})
        run = _Run(action, record)
        self._running[ident] = run
        run.thread = threading.Thread(target=self._work, args=(ident, run, event),
                                      name=f"rnn-jax action {action.gesture}", daemon=True)
        run.thread.start()
        return self._count({**record, "status": "launched"})

    def _count(self, record: dict[str, Any]) -> dict[str, Any]:
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        return record

    def _work(self, ident: int, run: _Run, event: Any) -> None:
        """On the action's own thread: run it to the end (or its timeout), queue the outcome."""
        action, start = run.action, time.perf_counter()
        result: dict[str, Any]
        try:
            if action.is_callback:
                action.command(event)  # type: ignore[operator]
                result = {"status": "ok"}
            else:
                result = self._run_command(run)
        except Exception as exc:  # a broken command or callback is an outcome, never a crash
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:_TAIL]}
        result["seconds"] = round(time.perf_counter() - start, 3)
        self._done.put((ident, {**run.record, **result}))

    def _run_command(self, run: _Run) -> dict[str, Any]:
        action = run.action
        posix = os.name == "posix"
        try:
            proc = subprocess.Popen(
                action.command, shell=action.shell, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=posix)  # its own group: a timeout kills it all
        except OSError as exc:
            return {"status": "error", "error": f"cannot run: {exc.strerror or exc}"}
        run.process = proc
        try:
            _, stderr = proc.communicate(timeout=action.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc, posix)
            proc.communicate()
            return {"status": "timeout", "returncode": proc.returncode}
        out: dict[str, Any] = {"status": "ok" if proc.returncode == 0 else "failed", "returncode": proc.returncode}
        if proc.returncode != 0 and stderr:
            out["stderr"] = stderr.decode("utf-8", "replace").strip()[-_TAIL:]
        return out

    def poll(self) -> list[dict[str, Any]]:
        """Outcomes of runs that finished since the last call (never waits)."""
        out = []
        while True:
            try:
                ident, record = self._done.get_nowait()
            except queue.Empty:
                return out
            self._running.pop(ident, None)
            out.append(self._count(record))

    @property
    def running(self) -> int:
        return len(self._running)

    def wait(self, wait_s: float | None = None) -> None:
        """Block until the runs going now have finished (or ``wait_s`` passed); outcomes stay for :meth:`poll`.
        Not for the frame loop: for scripts and tests that need a run to be over."""
        deadline = None if wait_s is None else time.perf_counter() + wait_s
        for run in list(self._running.values()):
            assert run.thread is not None
            run.thread.join(None if deadline is None else max(0.0, deadline - time.perf_counter()))

    def close(self, wait_s: float | None = None) -> list[dict[str, Any]]:
        """End of the stream: wait for running actions (each is bounded by its own timeout, or by
        ``wait_s`` when given, after which commands still running are killed); returns their outcomes."""
        deadline = None if wait_s is None else time.perf_counter() + wait_s
        for run in list(self._running.values()):
            assert run.thread is not None
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            run.thread.join(left)
            if run.thread.is_alive() and run.process is not None:
                _kill(run.process, os.name == "posix")
                run.thread.join(5.0)
        self._active.clear()
        return self.poll()

    def summary(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"  actions: {self.fired} fired ({shown or 'none'})"


def _kill(proc: subprocess.Popen, posix: bool) -> None:
    if proc.poll() is not None:
        return
    try:
        if posix:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()


def build_runner(*, actions_file: str | Path | None = None, on: Sequence[str] = (),
                 callbacks: Callback | Mapping[str, object] | None = None, dry_run: bool = False,
                 timeout_s: float = DEFAULT_TIMEOUT_S, cooldown_s: float = DEFAULT_COOLDOWN_S,
                 known_gestures: Iterable[str] | None = None) -> ActionRunner | None:
    """The CLI's and the API's one way in: file + ``--on`` flags + Python callbacks -> a runner
    (None when nothing is mapped). ``callbacks``: one callable for every gesture, or a mapping
    gesture -> callable / command. With ``known_gestures`` a mapped name no model knows is an error."""
    actions: list[Action] = []
    if actions_file is not None:
        actions += load_actions(actions_file, timeout_s=timeout_s, cooldown_s=cooldown_s)
    actions += [parse_on(text, timeout_s=timeout_s, cooldown_s=cooldown_s) for text in on]
    known = tuple(known_gestures) if known_gestures is not None else None
    if callable(callbacks):
        if known is None:
            raise ConfigError("a callback for every gesture needs the list of gestures")
        actions += [Action(g, callbacks, timeout_s=timeout_s, cooldown_s=cooldown_s, origin="on_gesture")
                    for g in known]
    elif callbacks is not None:
        actions += [make_action(str(g), spec, timeout_s=timeout_s, cooldown_s=cooldown_s, origin="on_gesture")
                    for g, spec in callbacks.items()]
    if not actions:
        return None
    if known is not None:
        check_gestures(actions, known)
    return ActionRunner(actions, dry_run=dry_run)


def print_outcomes(records: Iterable[dict[str, Any]], out: Any = None) -> None:
    """Action outcomes as JSON lines (``{"event": "action", ...}``) on ``out`` (default stdout)."""
    out = out or sys.stdout
    wrote = False
    for record in records:
        out.write(json.dumps({"event": "action", **record}) + "\n")
        wrote = True
    if wrote:
        out.flush()

"""The experiments' config flags, made from the config dataclasses (rnn_jax/config.py): each
flag's help, choices and default come from its field's metadata, so no default is written twice.
An experiment changes only its own defaults (``add_common_flags(parser, gens=4, ...)``); any field
without a flag of its own is reachable with ``--set section.field=value``."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from rnn_jax.config import SECTIONS, config_field, parse_assignment
from rnn_jax.errors import ConfigError

# the order of the flags in --help (field paths: "section.field", or a RunConfig field of its own)
LINEAGE = ("gens", "train.epochs", "train.student_epochs", "train.batch_size", "train.lr", "train.optimizer",
           "train.weight_decay", "model.name", "model.size", "model.dtype", "model.conv", "devices", "seed",
           "train.max_train", "train.augment", "train.flip", "train.mixup", "train.cutmix", "train.keep_epoch")
DISTILLATION = ("distill.alpha", "distill.temperature", "distill.temperature_end", "distill.temperature_schedule",
                "distill.label_smoothing", "distill.teacher", "distill.teacher_from", "distill.ema_decay",
                "distill.ps_kd", "distill.hint_weight", "distill.teacher_views", "model.dropout",
                "model.stochastic_depth", "patience", "min_delta", "final_by")
_FIELD_DEFAULT = object()


def flag(path: str) -> str:
    """The field's command-line flag: its metadata's ``flag``, else ``--the-name``."""
    _, f = config_field(path)
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def dest(path: str) -> str:
    """The attribute the flag sets on the parsed arguments (as argparse names it)."""
    return flag(path)[2:].replace("-", "_")


def default_text(value: object) -> str:
    """A default as --help shows it: None is filled in from the experiment's preset."""
    if value is None:
        return "from --preset"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    """4.0 -> 4, 0.003 -> 0.003, 5e-4 -> 5e-4 (the shortest exact form)."""
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:g}"
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            break
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def add_field_flag(group, path: str, default: object = _FIELD_DEFAULT, help: str | None = None) -> None:
    """Add the flag of one config field to ``group``; ``default`` (in the field's terms) and
    ``help`` replace the field's own for this experiment."""
    section, f = config_field(path)
    meta = f.metadata
    value = f.default if default is _FIELD_DEFAULT else default
    text = (help or meta["help"]).replace("{default}", default_text(value)).replace("%", "%%")
    if meta.get("negate"):  # --no-x: stores True when the field is off
        group.add_argument(flag(path), action="store_true", default=not value, help=text)
        return
    hint = typing.get_type_hints(SECTIONS[section])[f.name]
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    kwargs = {k: meta[k] for k in ("choices", "metavar") if k in meta}
    group.add_argument(flag(path), default=value, help=text, **kwargs,
                       **({"type": kind} if kind in (int, float) else {}))


def add_common_flags(parser: argparse.ArgumentParser, *, help: dict[str, str] | None = None,
                     **defaults: object) -> None:
    """The engine's flags, grouped as in --help. ``defaults``: the experiment's own defaults by flag
    name (``gens=4``, ``no_flip=True``; None = "from --preset"); ``help``: replaced help texts by
    flag name."""
    paths = {dest(p): p for p in LINEAGE + DISTILLATION}
    unknown = sorted((set(defaults) | set(help or {})) - set(paths))
    if unknown:
        raise TypeError(f"add_common_flags: no config flag {', '.join(unknown)}")

    def add(group, path: str) -> None:
        name = dest(path)
        value = defaults.get(name, _FIELD_DEFAULT)
        if value is not _FIELD_DEFAULT and config_field(path)[1].metadata.get("negate"):
            value = not value  # given as the flag's value (no_flip=True): the field is off
        add_field_flag(group, path, value, (help or {}).get(name))

    g = parser.add_argument_group("lineage")
    for path in LINEAGE:
        add(g, path)
    d = parser.add_argument_group("distillation")
    for path in DISTILLATION:
        add(d, path)
    d.add_argument("--set", action="append", default=None, metavar="SECTION.FIELD=VALUE",
                   help="set a config field that has no flag of its own (repeatable), e.g. --set "
                        "train.warmup_epochs=1 or --set ensemble_from=0; fields and defaults: rnn_jax/config.py")
    o = parser.add_argument_group("output")
    o.add_argument("--out", default=None, help="run folder (default runs/<experiment>-<time>)")
    o.add_argument("--resume", action="store_true", help="continue the run in --out; finished generations are kept")
    o.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    o.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    o.add_argument("--debug", action="store_true", help="show full tracebacks on errors")


def config_values(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Per section (``""``: RunConfig's own fields), the values that the flags and ``--set`` give;
    every field they leave out keeps its dataclass default."""
    values: dict[str, dict[str, object]] = {section: {} for section in SECTIONS}
    flagged: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            path = f"{section}.{f.name}" if section else f.name
            if "help" in f.metadata and hasattr(args, dest(path)):
                value = getattr(args, dest(path))
                values[section][f.name] = (not value) if f.metadata.get("negate") else value
                flagged[path] = flag(path)
    for text in getattr(args, "set", None) or ():
        section, name, value = parse_assignment(text)
        path = f"{section}.{name}" if section else name
        if path in flagged:
            raise ConfigError(f"--set {path}: use {flagged[path]}")
        values[section][name] = value
    return values


def run_config_from_args(args: argparse.Namespace):
    """The validated RunConfig of parsed flags (joins a multi-process run first)."""
    from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
    from rnn_jax.distributed import initialize_from_env
    from rnn_jax.models.registry import ModelSpec, model_spec

    # join a multi-process run (SLURM / RNN_JAX_* variables) before anything touches a JAX
    # backend: loading the data below may already do so
    initialize_from_env()
    values = config_values(args)
    model = values.pop("model")
    spec = model_spec(model.pop("name", ModelSpec.name), model.pop("size", ModelSpec.size), **model)
    return RunConfig(model=spec, distill=DistillConfig(**values.pop("distill")),
                     train=TrainConfig(**values.pop("train")), **values.pop(""))

"""The lineage record as types: one :class:`GenerationEntry` per generation inside a
:class:`LineageRecord`. The driver changes the record only through these (entries are
frozen: a change is a new entry put back), and :class:`~rnn_jax.lineage.run_folder.RunFolder`
is its one writer.

On disk it is the same lineage.json as ever (same keys, same order); readers that only read
(reports, export, the API) keep using the plain dict from :func:`read_lineage`. Entries of
older files load too: missing fields get their old meaning, unknown keys are kept as they were.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_OPTIONAL = ("teacher_time_s", "teacher_views", "stop_reason")  # written only when set, in this order
_FIELDS = ("gen", "parent", "teachers", "seed", "alpha", "temperature", "status", "epochs", "time_s",
           *_OPTIONAL, "best_epoch")


@dataclasses.dataclass(frozen=True)
class GenerationEntry:
    """One generation in lineage.json: who taught it, how it trained, how it scored."""

    gen: int
    parent: int | None
    teachers: tuple[int, ...]
    seed: int | None
    alpha: float
    temperature: float | None
    status: str | None = "running"  # running | done | failed
    epochs: tuple[dict, ...] = ()  # one row per finished epoch (the rows metrics.jsonl gets)
    time_s: float = 0.0
    teacher_time_s: float | None = None
    teacher_views: int | None = None
    stop_reason: str | None = None  # why a failed generation failed
    scores: tuple[tuple[str, float], ...] = ()  # ("train_acc", ..), ("train_loss", ..), ... per split, once done
    best_epoch: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # keys of a newer or older writer, kept as they were

    def __getitem__(self, key: str) -> Any:  # reads like the dict it was: entry["val_acc"]
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"gen": self.gen, "parent": self.parent, "teachers": list(self.teachers),
                               "seed": self.seed, "alpha": self.alpha, "temperature": self.temperature,
                               "status": self.status, "epochs": list(self.epochs), "time_s": self.time_s}
        for name in _OPTIONAL:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.scores)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, entry: dict) -> GenerationEntry:
        gen = entry["gen"]
        scores = tuple((k, v) for k, v in entry.items()
                       if k not in _FIELDS and k.endswith(("_acc", "_loss")) and isinstance(v, (int, float)))
        known = {*_FIELDS, *(k for k, _ in scores)}
        return cls(gen=gen, parent=entry.get("parent", gen - 1 if gen > 0 else None),
                   teachers=tuple(entry.get("teachers", [gen - 1] if gen > 0 else [])),
                   seed=entry.get("seed"), alpha=entry.get("alpha", 0.0), temperature=entry.get("temperature"),
                   status=entry.get("status"), epochs=tuple(entry.get("epochs", ())),
                   time_s=entry.get("time_s", 0.0),
                   **{name: entry.get(name) for name in (*_OPTIONAL, "best_epoch")},
                   scores=scores, extra=tuple((k, v) for k, v in entry.items() if k not in known))


class LineageRecord:
    """lineage.json in memory: the run's fields in their order, with typed generation entries."""

    def __init__(self, fields: dict):
        self._fields = dict(fields)
        self.generations = [GenerationEntry.from_dict(g) for g in self._fields.get("generations", [])]
        self._fields["generations"] = None  # keeps its place in the key order

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key] if key == "generations" else self._fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "generations":
            raise KeyError("generations change through put()")
        self._fields[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key, default)

    def entry(self, gen: int) -> GenerationEntry | None:
        return next((e for e in self.generations if e.gen == gen), None)

    def put(self, entry: GenerationEntry) -> GenerationEntry:
        """Replace generation ``entry.gen``'s entry (or add it at the end); returns ``entry``."""
        for i, old in enumerate(self.generations):
            if old.gen == entry.gen:
                self.generations[i] = entry
                return entry
        self.generations.append(entry)
        return entry

    def finished(self) -> list[GenerationEntry]:
        return [e for e in self.generations if e.status == "done"]

    def to_dict(self) -> dict:
        return {k: [e.to_dict() for e in self.generations] if k == "generations" else v
                for k, v in self._fields.items()}

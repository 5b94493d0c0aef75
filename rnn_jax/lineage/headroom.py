"""Is there anything to distil? The headroom of independently seeded generation-0 models.

A born-again student can only learn what its teacher knows beyond the student's own reach. When
several generation-0 models trained from different seeds make the same mistakes, their ensemble
is no better than one of them and no student distilled from them has anything to gain: a lineage
Δ of zero then means "nothing to gain", not "distillation failed". Two numbers say how much there is:

- **ensemble**: the mean of the N generation-0 models' probabilities, scored on the split;
- **right in any**: the share of examples at least one of the N gets right (an oracle: an
  upper bound on what combining them could reach).

Both are reported beside the mean single model, in points, on the split the lineage reports
(test when every run has one, else val). Computed from the runs' stored logits
(``gen_0/<split>_logits.npy``) and labels (``labels/<split>.npy``); no model is run. The runs must
have scored the same examples: equal stored labels are necessary but not enough (a split drawn
with the seed can have the same labels in the same order), so with ``verify`` each run's data is
reloaded as its ``lineage.json`` says and the split's content compared.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_jax.distill.ensemble import ensemble_probabilities


def _load(run: Path, split: str, gen: int) -> tuple[np.ndarray, np.ndarray] | None:
    logits, labels = run / f"gen_{gen}" / f"{split}_logits.npy", run / "labels" / f"{split}.npy"
    if not (logits.is_file() and labels.is_file()):
        return None
    return np.load(logits), np.load(labels).astype(np.int64)


def _fingerprint(run: Path) -> str | None:
    try:
        return json.loads((run / "lineage.json").read_text())["data"].get("fingerprint")
    except (OSError, ValueError, KeyError):
        return None


def split_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of a split's content (shape, every label, a strided sample of the inputs)."""
    h = hashlib.sha1(repr(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(labels, np.int64).tobytes())
    h.update(np.ascontiguousarray(images[:: max(1, len(images) // 256)]).tobytes())
    return h.hexdigest()[:16]


def run_split_digest(run: Path, split: str) -> str | None:
    """:func:`split_digest` of ``split`` in a run's data, reloaded as its lineage.json's ``data_spec``
    says (None when the record has no data spec or the data has no such split)."""
    try:
        spec = json.loads((Path(run) / "lineage.json").read_text()).get("data_spec")
    except (OSError, ValueError):
        return None
    if not spec:
        return None
    from rnn_jax.data.registry import DataSpec, load_dataset

    data = load_dataset(DataSpec(**spec), progress=False).splits().get(split)
    return None if data is None else split_digest(np.asarray(data.images), np.asarray(data.labels))


def headroom(members: Sequence[np.ndarray], labels: np.ndarray, max_subsets: int = 256) -> dict:
    """Single-model, ensemble and right-in-any accuracy of ``members`` (logits, one per model).

    ``ensemble_by_size[k]``: the mean accuracy over every ensemble of k members (at most
    ``max_subsets`` of them, the first in order), so "an ensemble of 2 equals the best single
    model" can be read off as well as the ensemble of all."""
    labels = np.asarray(labels)
    right = np.array([np.asarray(m).argmax(axis=1) == labels for m in members])
    singles = right.mean(axis=1)
    by_size = {}
    for k in range(2, len(members) + 1):
        subsets = list(itertools.islice(itertools.combinations(range(len(members)), k), max_subsets))
        by_size[k] = float(np.mean([np.mean(ensemble_probabilities([members[i] for i in s]).argmax(axis=1) == labels)
                                    for s in subsets]))
    ensemble = by_size.get(len(members), float(singles.mean()))
    right_in_any = float(right.any(axis=0).mean())
    mean = float(singles.mean())
    return {"models": len(members), "examples": int(len(labels)), "single_mean": mean,
            "single_std": float(singles.std(ddof=1)) if len(singles) > 1 else 0.0,
            "single_best": float(singles.max()), "ensemble": ensemble, "right_in_any": right_in_any,
            "ensemble_gain": ensemble - mean, "right_in_any_gain": right_in_any - mean,
            "ensemble_by_size": by_size}


def seed_headroom(run_dirs: Sequence[str | Path], split: str, gen: int = 0, verify: bool = False) -> dict | None:
    """:func:`headroom` of generation ``gen`` over the seeds' run folders, on ``split``.

    None when fewer than two runs store that split's logits and labels. The runs must have scored
    the same examples: when their stored labels differ, or (``verify``) their reloaded split's
    content differs (e.g. a split drawn with the seed), the result says so (``comparable`` False)
    instead of a number. ``same_examples``: "verified", or "labels only" without ``verify`` or
    when a run does not record how its data was loaded."""
    members, labels, used, fingerprints = [], None, [], set()
    for run in map(Path, run_dirs):
        loaded = _load(run, split, gen)
        if loaded is None:
            continue
        logits, y = loaded
        if labels is not None and not np.array_equal(y, labels):
            return {"split": split, "gen": gen, "comparable": False,
                    "reason": f"{run.name} scored other {split} examples than {used[0]} (labels differ)"}
        labels = y if labels is None else labels
        members.append(logits)
        used.append(run.name)
        fingerprints.add(_fingerprint(run))
    if len(members) < 2:
        return None
    same = "labels only"
    if verify:
        runs = {Path(r).name: Path(r) for r in run_dirs}
        digests = {name: run_split_digest(runs[name], split) for name in used}
        if None not in digests.values():
            if len(set(digests.values())) > 1:
                odd = next(n for n in used if digests[n] != digests[used[0]])
                return {"split": split, "gen": gen, "comparable": False,
                        "reason": f"{odd} scored other {split} examples than {used[0]} (same labels, other "
                                  "content: the split is drawn with the seed)"}
            same = "verified"
    return {"split": split, "gen": gen, "comparable": True, "runs": used, "same_examples": same,
            "same_data_fingerprint": len(fingerprints) == 1, **headroom(members, labels)}


def format_headroom(result: dict | None, scale: float = 100.0) -> str:
    """Two lines for a report: what the seeds' generation-0 models reach together."""
    if result is None:
        return "headroom: fewer than two runs store generation 0's logits and labels"
    if not result["comparable"]:
        return f"headroom: not computed ({result['reason']})"
    return (f"headroom on {result['split']} ({result['models']} generation-0 models from independent seeds, "
            f"{result['examples']} examples):\n"
            f"  single model {result['single_mean'] * scale:.2f} ± {result['single_std'] * scale:.2f} "
            f"(best {result['single_best'] * scale:.2f}); ensemble of {result['models']} "
            f"{result['ensemble'] * scale:.2f} ({result['ensemble_gain'] * scale:+.2f}); right in any "
            f"{result['right_in_any'] * scale:.2f} ({result['right_in_any_gain'] * scale:+.2f})"
            + ("" if result.get("same_examples") == "verified" else "  [same labels; the examples themselves not verified]"))

"""The one person-split rule: whole people into train and the carved parts, seeded, by example count.

Why one rule: photos of one person in two splits let a model score by recognising the person,
and every reader that has to carve a split itself (HaGRID images and landmarks, landmark
.npz files, the built-in synthetic hands) must carve it the same way. The rule: people sorted
by id, shuffled by ``seed``; each carved part (in the order given) takes whole people from the
front until it holds about its fraction of the *examples* (a person is taken while half of
them still fits; every part gets at least one person), and train keeps the rest (at least one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from rnn_jax.data.landmark_files import LandmarkSet
from rnn_jax.errors import DataError


def split_people(people: Iterable[str], fractions: Mapping[str, float], seed: int,
                 what: str = "people", hint: str = "") -> dict[str, list[str]]:
    """``people`` (one id per example) -> {"train": ids, part: ids, ...} in the order drawn.

    Parts with a fraction <= 0 are left out. ``what`` names the ids (and ``hint`` a way out)
    in the error raised when there are too few people for a person-disjoint split.
    """
    counts = Counter(people)
    users = sorted(counts)
    wanted = {k: f for k, f in fractions.items() if f > 0}
    if len(users) < len(wanted) + 1:
        raise DataError(f"only {len(users)} {what}: a person-disjoint split into train + "
                        f"{', '.join(wanted)} needs at least {len(wanted) + 1}{hint}")
    order = np.random.default_rng(seed).permutation(len(users))
    total = sum(counts.values())
    parts: dict[str, list[str]] = {"train": [], **{k: [] for k in wanted}}
    sizes = dict.fromkeys(wanted, 0)
    pos = 0
    for k, f in wanted.items():  # give each carved part whole people until it reaches its share
        while pos < len(order) - 1 and (not parts[k] or sizes[k] + counts[users[order[pos]]] / 2
                                        <= f * total):
            parts[k].append(users[order[pos]])
            sizes[k] += counts[users[order[pos]]]
            pos += 1
    parts["train"] = [users[i] for i in order[pos:]]
    return parts


def split_by_person(data: LandmarkSet, val_fraction: float = 0.2, seed: int = 0) -> tuple[LandmarkSet, LandmarkSet]:
    """Seeded person-disjoint train/val split of landmark data by :func:`split_people` (order kept)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    people = np.asarray(data.person_ids).astype(str).tolist()
    val_people = set(split_people(people, {"val": val_fraction}, seed,
                                  what="person id(s) in the landmark data",
                                  hint=" (or give train.npz and val.npz)")["val"])
    is_val = np.array([p in val_people for p in people])
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))

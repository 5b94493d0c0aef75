"""The one person-split rule (rnn_jax/data/splits.py): whole people, seeded, by example count, used by
the HaGRID image loader, the HaGRID landmark reader and landmark .npz files alike."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from rnn_jax.data.landmark_synthetic import builtin_landmarks
from rnn_jax.data.splits import split_by_person, split_people
from rnn_jax.errors import DataError


def _image_loader_rule_before_the_reshape(people: list[str], fractions: dict[str, float], seed: int) -> dict:
    """data/hagrid.py's _split_people as it was (a6a6dc6), on person ids: the image path must not move."""
    by_user: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        by_user[p].append(i)
    users = sorted(by_user)
    wanted = {k: f for k, f in fractions.items() if f > 0}
    order = np.random.default_rng(seed).permutation(len(users))
    parts: dict[str, list[int]] = {"train": [], **{k: [] for k in wanted}}
    targets = {k: f * len(people) for k, f in wanted.items()}
    pos = 0
    for k in wanted:
        while pos < len(order) - 1 and (not parts[k] or len(parts[k]) + len(by_user[users[order[pos]]]) / 2
                                        <= targets[k]):
            parts[k].extend(by_user[users[order[pos]]])
            pos += 1
    for i in order[pos:]:
        parts["train"].extend(by_user[users[i]])
    return parts


@pytest.mark.parametrize("seed", range(6))
def test_the_rule_is_the_image_loaders_rule(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    people = [f"user{int(u):02d}" for u in rng.integers(0, 3 + seed * 3, 40 + 13 * seed)]
    for fractions in ({"val": 0.15, "test": 0.15}, {"val": 0.3}, {"val": 0.2, "test": 0.0}):
        got = split_people(people, fractions, seed)
        by_user = defaultdict(list)
        for i, p in enumerate(people):
            by_user[p].append(i)
        as_indices = {k: [i for u in us for i in by_user[u]] for k, us in got.items()}
        assert as_indices == _image_loader_rule_before_the_reshape(people, fractions, seed)


def test_whole_people_every_part_one_at_least_and_too_few_people_refused() -> None:
    people = ["a"] * 10 + ["b"] + ["c"] * 3
    parts = split_people(people, {"val": 0.01, "test": 0.01}, 0)
    assert all(len(v) == 1 for v in parts.values()) and sorted(sum(parts.values(), [])) == ["a", "b", "c"]
    with pytest.raises(DataError, match=r"only 2 people.*train \+ val, test needs at least 3"):
        split_people(["a", "b"], {"val": 0.2, "test": 0.2}, 0)


def test_split_by_person_keeps_the_example_order_and_follows_the_rule() -> None:
    data = builtin_landmarks(people=9, per_class=1, seed=2)
    data = data.subset(np.flatnonzero([i % 3 or p.endswith(("1", "5")) for i, p in enumerate(data.person_ids)]))
    train, val = split_by_person(data, 0.25, seed=4)
    want = set(split_people(data.person_ids.tolist(), {"val": 0.25}, 4)["val"])
    assert set(val.person_ids.tolist()) == want and not want & set(train.person_ids.tolist())
    is_val = np.isin(data.person_ids, list(want))
    assert np.array_equal(val.sources, data.sources[is_val]) and np.array_equal(train.sources, data.sources[~is_val])
    with pytest.raises(DataError, match="or give train.npz and val.npz"):
        split_by_person(data.subset(np.flatnonzero(data.person_ids == data.person_ids[0])), 0.2)

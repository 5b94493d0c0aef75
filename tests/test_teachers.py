"""Teacher signals: who teaches, ensembles as log-mean-probabilities, mixing the cached rows."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.data.mixing import Mix
from rnn_jax.distill.teachers import (
    TeacherSource,
    batch_teacher_logits,
    ensemble_log_probs,
    teacher_generations,
)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_parent_and_ensemble_teachers():
    assert teacher_generations(0, "ensemble") == [] and teacher_generations(0, "parent") == []
    assert teacher_generations(3, "parent") == [2]
    assert teacher_generations(3, "ensemble") == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown teacher"):
        teacher_generations(1, "grandparent")


def test_ensemble_is_the_log_of_the_mean_probability():
    rng = np.random.default_rng(0)
    members = [rng.normal(size=(6, 5)) * 3 for _ in range(3)]
    expected = np.mean([_softmax(m) for m in members], axis=0)
    np.testing.assert_allclose(np.exp(ensemble_log_probs(members)), expected, rtol=1e-5)
    one = members[0].astype(np.float32)
    np.testing.assert_array_equal(ensemble_log_probs([one]), one)  # a single teacher passes through


def test_cached_rows_are_mixed_like_the_batch():
    logits = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], np.float32))
    mix = Mix(perm=np.array([1, 0, 2]), lam=0.25)
    out = np.asarray(batch_teacher_logits(TeacherSource(logits, None), np.arange(3), jnp.zeros((3, 1)), None, mix))
    expected = 0.25 * np.exp(logits) + 0.75 * np.exp(logits)[[1, 0, 2]]
    np.testing.assert_allclose(_softmax(out), expected, rtol=1e-5)


def test_consistent_ensemble_runs_every_member_on_the_batch():
    images = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)

    def forward(params, batch_stats, x):  # a "model": a fixed linear map per member
        return x @ params + batch_stats

    members = tuple((jnp.eye(3) * k, jnp.full((3,), float(k))) for k in (1, 2))
    out = batch_teacher_logits(TeacherSource(None, forward, members=members), np.arange(4), images, None)
    expected = np.mean([_softmax(np.asarray(forward(p, s, images))) for p, s in members], axis=0)
    np.testing.assert_allclose(np.exp(np.asarray(out)), expected, rtol=1e-5)

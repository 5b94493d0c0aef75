"""The jitted step, both teacher modes, and the checkpoint round trip."""

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.distill.schedules import learning_rate_schedule
from rnn_jax.distill.step import (
    init_state,
    make_forward,
    make_optimizer,
    make_train_step,
    split_model,
)
from rnn_jax.lineage.checkpoint import GenerationCheckpoints
from rnn_jax.lineage.driver import TeacherSource, batch_teacher_logits
from rnn_jax.models.registry import ModelSpec, create_model


def _setup(ema=0.0, spec: ModelSpec | None = None):
    spec = spec or ModelSpec("resnet", "tiny")
    model = create_model(spec, (8, 8, 1), 4, seed=0)
    fns, params, stats = split_model(model)
    tx = make_optimizer(learning_rate_schedule(1e-2, 50, 0), "adamw", 0.0, model_name=spec.name, flat=False)
    return fns, tx, init_state(params, stats, tx, ema=ema > 0), make_train_step(fns, tx, 0.0, ema)


def _batch(blobs, n=32):
    return jnp.asarray(blobs.train.images[:n], jnp.float32), jnp.asarray(blobs.train.labels[:n])


def test_step_learns_and_updates_batch_stats(blobs):
    fns, tx, state, step = _setup()
    x, y = _batch(blobs)
    stats0 = jax.tree.map(np.asarray, state.batch_stats)
    zeros = jnp.zeros((32, 4))
    losses = []
    for _ in range(30):
        state, metrics = step(state, x, y, zeros, 0.0, 4.0, jax.random.key(0))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(stats0), jax.tree.leaves(state.batch_stats)))


def test_teacher_term_pulls_student_towards_teacher(blobs):
    fns, tx, state, step = _setup()
    x, y = _batch(blobs)
    forward = make_forward(fns)
    teacher = jnp.tile(jnp.array([[5.0, 0.0, 0.0, 0.0]]), (32, 1))  # a teacher that always says class 0
    for _ in range(40):
        state, _ = step(state, x, y, teacher, 1.0, 1.0, jax.random.key(0))  # alpha=1: teacher only
    preds = np.asarray(forward(state.params, state.batch_stats, x)).argmax(1)
    assert (preds == 0).mean() > 0.9


def test_ema_weights_lag_behind_the_raw_weights(blobs):
    fns, tx, state, step = _setup(ema=0.9)
    x, y = _batch(blobs)
    for _ in range(5):
        state, _ = step(state, x, y, jnp.zeros((32, 4)), 0.0, 4.0, jax.random.key(0))
    raw, ema = jax.tree.leaves(state.params)[0], jax.tree.leaves(state.ema_params)[0]
    assert not np.allclose(raw, ema)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, blobs):
    fns, tx, state, step = _setup()
    x, y = _batch(blobs)
    for _ in range(3):
        state, _ = step(state, x, y, jnp.zeros((32, 4)), 0.0, 4.0, jax.random.key(0))
    forward = make_forward(fns)
    before = np.asarray(forward(state.params, state.batch_stats, x))
    checkpoints = GenerationCheckpoints(tmp_path / "gen_0")
    checkpoints.save_best(2, {"params": state.params, "batch_stats": state.batch_stats})
    checkpoints.save_resume(3, state)
    checkpoints.close()

    _, fresh_tx, fresh, _ = _setup()
    reopened = GenerationCheckpoints(tmp_path / "gen_0")
    weights = reopened.restore_best({"params": fresh.params, "batch_stats": fresh.batch_stats})
    after = np.asarray(forward(weights["params"], weights["batch_stats"], x))
    np.testing.assert_array_equal(before, after)
    resumed = reopened.restore_resume(fresh)
    assert int(resumed.step) == 3 and reopened.resume_epoch() == 3 and reopened.best_epoch() == 2
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(state), strict=True):  # every leaf, bit for bit
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_resume_checkpoint_with_per_leaf_optimizer_state_resumes_into_the_flat_optimizer(tmp_path, blobs):
    """Runs interrupted before the optimizer was raveled (optax.flatten) go on unchanged."""
    fns, per_leaf, state, per_leaf_step = _setup()
    flat = make_optimizer(learning_rate_schedule(1e-2, 50, 0), "adamw", 0.0, model_name="resnet", flat=True)
    flat_state = init_state(state.params, state.batch_stats, flat)
    flat_step = make_train_step(fns, flat)
    x, y = _batch(blobs)
    zeros = jnp.zeros((32, 4))
    for _ in range(3):
        state, _ = per_leaf_step(state, x, y, zeros, 0.0, 4.0, jax.random.key(0))
    checkpoints = GenerationCheckpoints(tmp_path / "gen_0")
    checkpoints.save_resume(3, state)
    checkpoints.close()

    resumed = GenerationCheckpoints(tmp_path / "gen_0").restore_resume(flat_state)
    assert len(jax.tree.leaves(resumed.opt_state)) < len(jax.tree.leaves(state.opt_state))
    state, _ = per_leaf_step(state, x, y, zeros, 0.0, 4.0, jax.random.key(0))
    resumed, _ = flat_step(resumed, x, y, zeros, 0.0, 4.0, jax.random.key(0))
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_a_resume_checkpoint_from_an_earlier_layout_is_refused_with_the_way_out(tmp_path):
    """Resume checkpoints are packed now; one saved as a plain tree says what to delete."""
    import orbax.checkpoint as ocp
    import pytest

    from rnn_jax.errors import ResumeError
    from rnn_jax.lineage.checkpoint import _manager

    _, _, state, _ = _setup()
    old = _manager(tmp_path / "gen_0" / "resume")
    old.save(2, args=ocp.args.StandardSave(state), force=True)
    old.wait_until_finished()
    old.close()
    with pytest.raises(ResumeError, match="delete that folder to train gen_0 again"):
        GenerationCheckpoints(tmp_path / "gen_0").restore_resume(state)


def test_cached_mode_looks_up_clean_logits_by_index():
    cached = np.arange(40, dtype=np.float32).reshape(10, 4)
    out = batch_teacher_logits(TeacherSource(cached, None), np.array([7, 2]), jnp.zeros((2, 8, 8, 1)), None)
    np.testing.assert_array_equal(np.asarray(out), cached[[7, 2]])


def test_consistent_mode_runs_the_teacher_on_the_augmented_batch(blobs):
    fns, _, state, _ = _setup()
    forward = make_forward(fns)
    x, _ = _batch(blobs, 8)
    source = TeacherSource(None, forward, state.params, state.batch_stats)
    out = batch_teacher_logits(source, np.arange(8), x, None)
    np.testing.assert_allclose(np.asarray(out), np.asarray(forward(state.params, state.batch_stats, x)))


def test_generation_zero_gets_no_teacher():
    zeros = jnp.zeros((2, 4))
    assert batch_teacher_logits(TeacherSource(None, None), np.arange(2), jnp.zeros((2, 8, 8, 1)), zeros) is zeros


def test_the_step_can_hand_back_its_own_softmax_predictions(blobs):
    """PS-KD stores them per example: the very forward the step trained on, no second pass."""
    fns, tx, state, _ = _setup()
    x, y = _batch(blobs)
    forward = make_forward(fns)
    step = make_train_step(fns, tx, with_predictions=True)
    state, metrics, probs = step(state, x, y, jnp.zeros((32, 4)), 0.0, 4.0, jax.random.key(0))
    probs = np.asarray(probs)
    assert probs.shape == (32, 4) and set(metrics) == {"loss", "ce", "kl", "correct"}
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    # train mode (batch statistics), so not the eval forward's numbers, but the same argmax count as "correct"
    assert int(metrics["correct"]) == int((probs.argmax(1) == np.asarray(y)).sum())
    assert not np.allclose(probs, jax.nn.softmax(forward(state.params, state.batch_stats, x)))

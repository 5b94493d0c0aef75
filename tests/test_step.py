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


def test_ema_weights_follow_the_ema_of_the_raw_weights(blobs):
    """After every step: ema = d * ema + (1 - d) * raw, starting from the initial weights."""
    decay = 0.9
    fns, tx, state, step = _setup(ema=decay)
    x, y = _batch(blobs)
    expected = [np.array(leaf, copy=True) for leaf in jax.tree.leaves(state.params)]
    for _ in range(5):
        state, _ = step(state, x, y, jnp.zeros((32, 4)), 0.0, 4.0, jax.random.key(0))
        raw = [np.array(leaf, copy=True) for leaf in jax.tree.leaves(state.params)]  # state is donated
        expected = [decay * e + (1 - decay) * r for e, r in zip(expected, raw)]
    ema = [np.asarray(leaf) for leaf in jax.tree.leaves(state.ema_params)]
    assert len(ema) == len(expected)
    for e, want in zip(ema, expected):
        np.testing.assert_allclose(e, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(raw[0], ema[0])  # and it lags behind the raw weights


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


def test_consistent_mode_combines_its_members_on_the_batch_it_is_given(blobs):
    """Two teachers (different weights): log of the mean of their softmaxes on these very images."""
    fns, _, first, _ = _setup()
    second = split_model(create_model(ModelSpec("resnet", "tiny"), (8, 8, 1), 4, seed=1))
    forward = make_forward(fns)
    x, _ = _batch(blobs, 8)
    members = ((first.params, first.batch_stats), (second[1], second[2]))
    out = np.asarray(batch_teacher_logits(TeacherSource(None, forward, members=members), np.arange(8), x, None))
    each = [np.asarray(forward(p, s, x), np.float64) for p, s in members]
    assert not np.allclose(each[0], each[1], atol=1e-3)
    probs = [np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
             for z in each]
    np.testing.assert_allclose(out, np.log((probs[0] + probs[1]) / 2), rtol=1e-4, atol=1e-5)


def test_in_the_driver_the_consistent_teacher_sees_the_very_mixed_batch_the_student_trains_on(
        tmp_path, blobs, monkeypatch):
    """End to end (mixup on): every student step's teacher input is the teacher generations' forward
    pass, recomputed here from their saved weights, on exactly the (mixed) images of that step."""
    import rnn_jax.lineage.context as context
    import rnn_jax.lineage.driver as driver
    from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
    from rnn_jax.distill.teachers import ensemble_log_probs

    real, seen = context.make_train_step, []

    def recording(*args, **kwargs):
        step = real(*args, **kwargs)

        def wrapped(state, images, labels, teacher, alpha, *rest):
            if float(alpha) > 0:  # a student (generation 0 has no teacher)
                seen.append((np.array(images), np.array(labels), np.array(teacher)))
            return step(state, images, labels, teacher, alpha, *rest)

        return wrapped

    monkeypatch.setattr(context, "make_train_step", recording)
    config = RunConfig(model=ModelSpec("mlp", "tiny"), gens=3, distill=DistillConfig(teacher="consistent"),
                       train=TrainConfig(epochs=1, student_epochs=1, batch_size=32, lr=1e-2, augment="basic",
                                         mixup=0.4))
    run = tmp_path / "run"
    record = driver.run_lineage(config, blobs, run, progress=False, log=lambda _: None)
    steps = len(blobs.train) // 32
    assert len(seen) == 2 * steps  # generations 1 and 2, one epoch each
    teachers = []
    for gen in (0, 1):
        fns, params, stats = driver.load_generation_weights(run, record, gen, (8, 8, 1), 4)
        teachers.append((make_forward(fns), params, stats))
    for i, (images, _, teacher) in enumerate(seen):
        members = teachers[: 1 if i < steps else 2]  # generation 2: the ensemble of 0 and 1
        expected = ensemble_log_probs([np.asarray(f(p, s, jnp.asarray(images))) for f, p, s in members])
        np.testing.assert_allclose(teacher, expected, rtol=1e-4, atol=1e-4)
    mixed = [labels for _, labels, _ in seen]
    assert all(m.ndim == 2 for m in mixed) and max(float((m.max(1) < 0.99).mean()) for m in mixed) > 0.5


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


def test_the_loss_terms_are_chosen_from_the_model_when_the_step_is_built():
    """Deep supervision for models with several heads (the TRM), KD + CE on the logits otherwise."""
    from rnn_jax.distill.deep_supervision import heads_forward
    from rnn_jax.distill.kd import logits_forward
    from rnn_jax.distill.step import _objective

    trm, _, _ = split_model(create_model(ModelSpec("trm", "tiny"), (1, 21, 3), 4, seed=0))
    resnet, _, _ = split_model(create_model(ModelSpec("resnet", "tiny"), (8, 8, 1), 4, seed=0))
    assert trm.deep_supervision and not resnet.deep_supervision
    assert _objective(trm, 0.0, "all").forward is heads_forward
    assert _objective(resnet, 0.0, "all").forward is logits_forward

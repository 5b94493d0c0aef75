"""FitNets feature hints: the loss, the cnn's guided layer, the step, config errors, a lineage, export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.distill.hints import apply_regressor, hint_loss, init_regressor
from rnn_jax.distill.schedules import learning_rate_schedule
from rnn_jax.distill.step import (
    init_state,
    make_forward,
    make_optimizer,
    make_train_step,
    split_model,
)
from rnn_jax.errors import ConfigError
from rnn_jax.lineage import driver
from rnn_jax.models.registry import ModelSpec, create_model

QUIET = {"progress": False, "log": lambda _: None}


def test_the_hint_loss_is_the_mse_after_the_regressor():
    rng = np.random.default_rng(0)
    student = jnp.asarray(rng.normal(size=(2, 3, 3, 4)), jnp.float32)
    teacher = jnp.asarray(rng.normal(size=(2, 3, 3, 4)), jnp.float32)
    identity = init_regressor(4)
    np.testing.assert_allclose(hint_loss(student, teacher, identity), np.mean((student - teacher) ** 2), rtol=1e-6)
    # a teacher whose channels are the student's, permuted and shifted: a 1x1 regressor matches it exactly
    perm = np.array([2, 0, 3, 1])
    regressor = {"kernel": jnp.eye(4)[:, perm], "bias": jnp.full((4,), 0.5)}
    permuted = student[..., perm] + 0.5
    np.testing.assert_allclose(apply_regressor(regressor, student), permuted, rtol=1e-6)
    assert float(hint_loss(student, permuted, regressor)) < 1e-10
    assert float(hint_loss(student, permuted, identity)) > 0.5  # the identity cannot


def test_the_cnn_gives_its_last_stage_features_from_the_same_forward():
    model = create_model(ModelSpec("cnn", "tiny"), (8, 8, 1), 4, seed=0)
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1)), jnp.float32)
    features, logits = model.features_and_logits(x)
    assert features.shape == (3, 2, 2, 32) and model.hint_channels == 32  # two conv+pool stages: 8 -> 4 -> 2
    np.testing.assert_array_equal(logits, model(x))
    np.testing.assert_array_equal(features, model.hint_features(x))


def _cnn_setup():
    model = create_model(ModelSpec("cnn", "tiny"), (8, 8, 1), 4, seed=0)
    fns, params, stats = split_model(model)
    tx = make_optimizer(learning_rate_schedule(1e-2, 50, 0), "adamw", 0.0, model_name="cnn", flat=False)
    return fns, tx, params, stats


def test_the_step_trains_the_student_and_its_regressor_towards_the_teacher_features(blobs):
    fns, tx, params, stats = _cnn_setup()
    x = jnp.asarray(blobs.train.images[:32], jnp.float32)
    y = jnp.asarray(blobs.train.labels[:32])
    teacher = create_model(ModelSpec("cnn", "tiny"), (8, 8, 1), 4, seed=7)
    _, t_params, t_stats = split_model(teacher)
    hint = make_forward(fns, method="hint_features")(t_params, t_stats, x)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)  # noqa: E731  (the step donates its state)
    state = init_state(copy(params), copy(stats), tx, hint_regressor=init_regressor(32))
    step = make_train_step(fns, tx, hint_weight=1.0)
    zeros = jnp.zeros((32, 4))
    hints = []
    for _ in range(30):
        state, metrics = step(state, x, y, zeros, 0.0, 4.0, jax.random.key(0), hint)
        hints.append(float(metrics["hint"]))
    assert hints[-1] < 0.5 * hints[0]
    assert float(metrics["loss"]) == pytest.approx(float(metrics["ce"]) + hints[-1], rel=1e-5)  # alpha 0, beta 1
    assert not np.allclose(state.hint.params["kernel"], np.eye(32))  # the regressor learned too
    plain, plain_metrics = make_train_step(fns, tx)(init_state(params, stats, tx), x, y, zeros, 0.0, 4.0,
                                                    jax.random.key(0))
    assert "hint" not in plain_metrics and plain.hint is None  # without hints: the step as before
    with pytest.raises(ValueError, match="hint regressor"):
        step(plain, x, y, zeros, 0.0, 4.0, jax.random.key(0), hint)


@pytest.mark.parametrize(("factory", "match"), [
    (lambda: DistillConfig(hint_weight=-1.0, teacher="consistent"), "--hint-weight must be >= 0, got -1.0"),
    (lambda: DistillConfig(hint_weight=float("nan"), teacher="consistent"), "--hint-weight must be >= 0"),
    (lambda: DistillConfig(hint_weight=0.5), "--hint-weight needs --teacher consistent"),
    (lambda: RunConfig(model=ModelSpec("resnet", "tiny"), distill=DistillConfig(hint_weight=0.5, teacher="consistent")),
     r"--hint-weight needs a model with a hint layer \(cnn\); resnet has none"),
])
def test_bad_hint_settings_are_one_line_config_errors(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_the_cli_flag_reaches_the_config_and_old_configs_still_load():
    import argparse

    from experiments.flags import add_common_flags, run_config_from_args

    parser = argparse.ArgumentParser()
    add_common_flags(parser, gens=2, epochs=2, model="cnn", size="tiny")
    config = run_config_from_args(parser.parse_args(["--hint-weight", "0.5", "--teacher", "consistent"]))
    assert config.distill.hint_weight == 0.5
    old = RunConfig().to_dict()
    del old["distill"]["hint_weight"]
    assert RunConfig.from_dict(old) == RunConfig()


def _config(**overrides) -> RunConfig:
    base = dict(model=ModelSpec("cnn", "tiny"), distill=DistillConfig(teacher="consistent", hint_weight=1.0),
                train=TrainConfig(epochs=2, student_epochs=2, batch_size=32, lr=1e-2, augment="none"), gens=2)
    base.update(overrides)
    return RunConfig(**base)


def test_a_hinted_cnn_lineage_logs_the_hint_loss_of_its_students_and_exports(tmp_path, blobs):
    from rnn_jax.distill.step import merge_eval_model
    from rnn_jax.export import export_model
    from rnn_jax.runtime import ModelInfo

    record = driver.run_lineage(_config(gens=3), blobs, tmp_path / "run", **QUIET)
    gens = record["generations"]
    assert [g["status"] for g in gens] == ["done"] * 3 and max(g["val_acc"] for g in gens) > 0.6
    assert all("train_hint" not in e for e in gens[0]["epochs"])  # generation 0 has no teacher, no hint
    for g in gens[1:]:  # generation 2's hint comes from generation 1 (the ensemble's newest member)
        hints = [e["train_hint"] for e in g["epochs"]]
        assert all(h > 0 and np.isfinite(h) for h in hints) and hints[-1] < hints[0]
        assert all(e["train_loss"] > e["train_hint"] for e in g["epochs"])  # the loss includes it (beta 1)
    # the best weights hold the model only (no regressor): they load, evaluate and export as ever
    fns, params, stats = driver.load_generation_weights(tmp_path / "run", record, 2, (8, 8, 1), 4)
    model = merge_eval_model(fns, params, stats)
    shape = (8, 8, 1)
    info = ModelInfo(class_names=("a", "b", "c", "d"), input_size=8, channels="GRAY", crop_mode="hand",
                     model_name="cnn-tiny", generation=2, val_accuracy=gens[2]["val_acc"], run_name="hints",
                     rnn_jax_version="0.1.0")
    pixels = np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8)
    assert export_model(model, shape, info, tmp_path / "model.onnx", parity_images=pixels).is_file()


def test_an_interrupted_hinted_student_resumes_with_its_regressor(tmp_path, blobs):
    """Stopped after the student's first epoch and resumed, the student's second epoch matches an
    uninterrupted run's, hint loss included: a regressor re-initialised at resume (the identity)
    would regress the teacher's features differently in that epoch."""
    from tests.test_reliability import assert_same_metrics, stopped_and_resumed

    clean, resumed, logs = stopped_and_resumed(_config(), blobs, tmp_path)
    assert any("gen 1: resuming after epoch 1" in line for line in logs)
    assert [g["status"] for g in resumed["generations"]] == ["done", "done"]
    assert [e["epoch"] for e in resumed["generations"][1]["epochs"]] == [0, 1]
    assert_same_metrics(resumed, clean)
    hints = [[e["train_hint"] for e in r["generations"][1]["epochs"]] for r in (resumed, clean)]
    assert all(h > 0 for h in hints[0])
    np.testing.assert_allclose(hints[0], hints[1], rtol=1e-5)

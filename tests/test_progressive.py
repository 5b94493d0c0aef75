"""PS-KD (progressive self-knowledge distillation): schedule, targets, store, and the driver with it."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.distill.progressive import (
    PredictionStore,
    progressive_targets,
    self_target_weight,
)
from rnn_jax.errors import ConfigError
from rnn_jax.lineage import context, driver
from rnn_jax.models.registry import ModelSpec

STEPS_PER_EPOCH = 512 // 32  # the blobs fixture's training set at batch size 32


def test_the_weight_starts_at_zero_and_reaches_its_final_value_in_the_last_epoch():
    weights = [self_target_weight(e, 4, 0.8) for e in range(4)]
    assert weights == pytest.approx([0.0, 0.4, 0.6, 0.8])  # a_T * (e + 1) / E after epoch 0
    assert self_target_weight(0, 1, 0.8) == 0.0  # one epoch: nothing earlier to learn from
    with pytest.raises(ValueError, match="outside"):
        self_target_weight(4, 4, 0.8)


def test_targets_mix_the_label_with_the_previous_prediction_and_stay_distributions():
    labels = np.array([2, 0])
    previous = np.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]], np.float32)
    out = progressive_targets(labels, previous, 0.5)
    np.testing.assert_allclose(out, [[0.05, 0.1, 0.85], [0.65, 0.3, 0.05]], rtol=1e-6)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(progressive_targets(labels, previous, 0.0), np.eye(3)[labels])
    assert out.dtype == np.float32


def test_the_store_starts_one_hot_and_is_updated_by_example_index():
    labels = np.array([0, 1, 2, 1])
    store = PredictionStore.from_labels(labels, 3)
    np.testing.assert_array_equal(store.targets(np.arange(4), labels, 0.7), np.eye(3)[labels])  # nothing predicted yet
    store.record(np.array([3, 0]), np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], np.float32))
    np.testing.assert_allclose(store.rows[3], [0.2, 0.5, 0.3])
    np.testing.assert_allclose(store.rows[0], [0.6, 0.3, 0.1])
    np.testing.assert_array_equal(store.rows[1], [0, 1, 0])  # untouched rows keep their label
    np.testing.assert_allclose(store.targets(np.array([3]), labels[[3]], 0.5), [[0.1, 0.75, 0.15]], rtol=1e-6)


@pytest.mark.parametrize(("factory", "match"), [
    (lambda: DistillConfig(ps_kd=1.0), r"--ps-kd must be in \[0, 1\), got 1.0"),
    (lambda: DistillConfig(ps_kd=-0.1), "--ps-kd must be in"),
    (lambda: RunConfig(distill=DistillConfig(ps_kd=0.8), train=TrainConfig(mixup=0.2)), "--ps-kd cannot be combined"),
    (lambda: RunConfig(distill=DistillConfig(ps_kd=0.8), train=TrainConfig(cutmix=1.0)), "--mixup/--cutmix"),
])
def test_bad_ps_kd_settings_are_one_line_config_errors(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_old_run_configs_without_the_field_still_load():
    old = RunConfig().to_dict()
    del old["distill"]["ps_kd"]
    assert RunConfig.from_dict(old) == RunConfig()


def test_the_cli_flag_reaches_the_config():
    import argparse

    from experiments.flags import add_common_flags, run_config_from_args

    parser = argparse.ArgumentParser()
    add_common_flags(parser, gens=2, epochs=2, model="mlp", size="tiny")
    assert run_config_from_args(parser.parse_args(["--ps-kd", "0.8"])).distill.ps_kd == 0.8
    assert run_config_from_args(parser.parse_args([])).distill.ps_kd == 0.0


def _config(**overrides) -> RunConfig:
    base = dict(model=ModelSpec("mlp", "tiny"), distill=DistillConfig(ps_kd=0.8),
                train=TrainConfig(epochs=3, student_epochs=2, batch_size=32, lr=1e-2, augment="none"), gens=1)
    base.update(overrides)
    return RunConfig(**base)


def _capture_labels(monkeypatch) -> list[np.ndarray]:
    """Record the label targets every train step receives."""
    seen: list[np.ndarray] = []
    real = context.make_train_step

    def make_train_step(*args, **kwargs):
        step = real(*args, **kwargs)

        def recording(state, images, labels, *rest):
            seen.append(np.asarray(labels))
            return step(state, images, labels, *rest)

        return recording

    monkeypatch.setattr(context, "make_train_step", make_train_step)
    return seen


def test_a_ps_kd_lineage_trains_on_its_own_earlier_predictions(tmp_path, blobs, monkeypatch):
    seen = _capture_labels(monkeypatch)
    record = driver.run_lineage(_config(gens=2), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    gens = record["generations"]
    assert [g["status"] for g in gens] == ["done", "done"] and max(g["val_acc"] for g in gens) > 0.6
    assert [e["ps_kd_weight"] for e in gens[0]["epochs"]] == pytest.approx([0.0, 0.8 * 2 / 3, 0.8])
    assert [e["ps_kd_weight"] for e in gens[1]["epochs"]] == pytest.approx([0.0, 0.8])  # students too
    assert len(seen) == (3 + 2) * STEPS_PER_EPOCH and all(s.shape == (32, 4) for s in seen)
    first_epoch, later = seen[:STEPS_PER_EPOCH], seen[STEPS_PER_EPOCH:3 * STEPS_PER_EPOCH]
    assert all(set(np.unique(s)) <= {0.0, 1.0} for s in first_epoch)  # epoch 0: the labels, one-hot
    for s in later:
        np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-5)
        assert s.max(1).min() >= 1 - 0.8 * 2 / 3 - 1e-6  # the label's share never drops below 1 - a_e
    soft = np.concatenate(later)
    assert np.mean((soft > 1e-4) & (soft < 1 - 1e-4)) > 0.5  # most entries are neither 0 nor 1 any more


def test_an_interrupted_ps_kd_generation_resumes_with_its_stored_predictions(tmp_path, blobs, monkeypatch):
    seen = _capture_labels(monkeypatch)
    driver.run_lineage(_config(), blobs, tmp_path / "straight", progress=False, log=lambda _: None)
    straight = list(seen)

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("gen 0 epoch 1/"):
            raise KeyboardInterrupt

    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        driver.run_lineage(_config(), blobs, tmp_path / "run", progress=False, log=stop_after_first_epoch)
    assert len(seen) == STEPS_PER_EPOCH
    seen.clear()
    logs: list[str] = []
    record = driver.run_lineage(_config(), blobs, tmp_path / "run", resume=True, progress=False, log=logs.append)
    assert any("gen 0: resuming after epoch 1" in line for line in logs)
    assert record["generations"][0]["status"] == "done"
    assert len(seen) == 2 * STEPS_PER_EPOCH
    # epoch 2's targets are built from epoch 1's stored predictions, as in the uninterrupted run
    for resumed, uninterrupted in zip(seen, straight[STEPS_PER_EPOCH:], strict=True):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)
    assert not set(np.unique(seen[0])) <= {0.0, 1.0}

"""Stored teacher views (--teacher-views): fixed per-example views, per-epoch choices, teacher
rows that line up with the student's pixels, the flag's checks, and a lineage that uses them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.data.hand_crops import ContextCropView
from rnn_jax.data.pipeline import epoch_seed, eval_batches, train_batches
from rnn_jax.distill.views import (
    ViewSpec,
    epoch_images,
    epoch_teacher_rows,
    epoch_views,
    teacher_view_logits,
    view_pixels,
)
from rnn_jax.errors import ConfigError
from rnn_jax.lineage.driver import run_lineage
from rnn_jax.models.registry import ModelSpec
from tests.test_reliability import assert_same_metrics, stopped_and_resumed

SPEC = ViewSpec(count=4, seed=3, augment="strong")


def _stored(n: int = 12, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _pixels(stored: np.ndarray, index, view: int, spec: ViewSpec = SPEC) -> np.ndarray:
    index = np.asarray(index)
    return view_pixels(stored[index], index, np.full(len(index), view), spec)


# ------------------------------------------------------------------ view pixels
def test_a_view_is_fixed_by_seed_example_and_view_alone():
    stored = _stored()
    alone = _pixels(stored, [5], 2)
    in_a_batch = _pixels(stored, [1, 5, 9], 2)[1]
    np.testing.assert_array_equal(alone[0], in_a_batch)  # the batch it is built in does not matter
    np.testing.assert_array_equal(alone, _pixels(stored, [5], 2))  # rebuilt identically
    assert alone.shape == (1, 16, 16, 3) and alone.dtype == np.uint8


def test_views_differ_across_views_seeds_and_from_the_clean_image():
    stored = _stored()
    index = np.arange(len(stored))
    views = [_pixels(stored, index, k) for k in range(SPEC.count)]
    for a in range(SPEC.count):
        assert not np.array_equal(views[a], stored)
        for b in range(a + 1, SPEC.count):
            assert not np.array_equal(views[a], views[b]), (a, b)
    other_seed = _pixels(stored, index, 0, dataclasses.replace(SPEC, seed=4))
    assert not np.array_equal(views[0], other_seed)


def test_stored_images_larger_than_the_input_become_input_sized_views():
    """Hand crops stored with context (a train view): each view is its own fixed crop."""
    spec = ViewSpec(count=3, seed=0, augment="basic", train_view=ContextCropView(8))
    stored = _stored(n=4, size=16)
    index = np.arange(4)
    first = view_pixels(stored, index, np.zeros(4, int), spec)
    assert first.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(first, view_pixels(stored, index, np.zeros(4, int), spec))
    assert not np.array_equal(first, view_pixels(stored, index, np.ones(4, int), spec))


def test_a_train_view_that_owns_its_augmentation_gives_fixed_views_too():
    """Landmarks: the view augments the features itself (no pixels to shift)."""
    from rnn_jax.data.landmark_dataset import landmark_dataset

    data = landmark_dataset(None)
    spec = ViewSpec(count=2, seed=0, augment="basic", train_view=data.train_view)
    index = np.arange(6)
    first = view_pixels(data.train.images[index], index, np.zeros(6, int), spec)
    assert first.shape == data.train.images[index].shape
    np.testing.assert_array_equal(first, view_pixels(data.train.images[index], index, np.zeros(6, int), spec))
    assert not np.array_equal(first, view_pixels(data.train.images[index], index, np.ones(6, int), spec))


def test_a_view_spec_needs_views_and_an_augmentation():
    with pytest.raises(ValueError, match="at least one view"):
        ViewSpec(count=0, seed=0, augment="basic")
    with pytest.raises(ValueError, match="same image"):
        ViewSpec(count=2, seed=0, augment="none")


# ------------------------------------------------------------------ choice per epoch
def test_the_choice_per_epoch_is_reproducible_covers_every_view_and_changes_each_epoch():
    a = epoch_views(epoch_seed(0, 1, 3), 2000, 4)
    np.testing.assert_array_equal(a, epoch_views(epoch_seed(0, 1, 3), 2000, 4))  # a resumed epoch
    assert a.shape == (2000,) and set(np.unique(a)) == {0, 1, 2, 3}
    assert np.bincount(a).min() > 400  # about uniform (500 each)
    assert not np.array_equal(a, epoch_views(epoch_seed(0, 1, 4), 2000, 4))
    assert set(np.unique(epoch_views(7, 50, 1))) == {0}


# ------------------------------------------------------------------ teacher rows == the student's pixels
def _fake_teacher(pixels: np.ndarray) -> np.ndarray:
    """A "forward" that is a fixed function of the pixels: rows match only on the same pixels."""
    weights = np.random.default_rng(42).normal(size=(int(np.prod(pixels.shape[1:])), 5))
    return pixels.reshape(len(pixels), -1).astype(np.float64) @ weights


def _logits_of(inputs: np.ndarray, transform) -> np.ndarray:
    """predict_logits' batching (eval_batches, padding dropped) with the fake forward."""
    return np.concatenate([_fake_teacher(batch)[:valid] for batch, valid in eval_batches(inputs, 7, transform)])


def test_teacher_rows_are_the_teacher_on_exactly_the_pixels_the_student_trains_on(blobs):
    spec = ViewSpec(count=3, seed=1, augment="basic")
    train = blobs.train
    logits = teacher_view_logits(_logits_of, train.images, spec)
    assert logits.shape == (len(train), 3, 5) and logits.dtype == np.float32
    seed = epoch_seed(1, 1, 0)
    views = epoch_views(seed, len(train), spec.count)
    rows = epoch_teacher_rows(logits, views)
    seen = 0
    for batch in train_batches(train, 32, seed, "basic", view_images=epoch_images(spec, views)):
        np.testing.assert_allclose(rows[batch["index"]], _fake_teacher(batch["images"]), rtol=1e-5, atol=1e-3)
        # ... while rows from the clean images (the cached teacher without views) would not match
        clean = _fake_teacher(train.images[batch["index"]])
        assert not np.allclose(rows[batch["index"]], clean, rtol=1e-5, atol=1e-3)
        seen += len(batch["index"])
    assert seen == len(train) // 32 * 32


# ------------------------------------------------------------------ the flag's checks
@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: DistillConfig(teacher_views=-1), "--teacher-views must be an integer >= 0"),
        (lambda: DistillConfig(teacher="consistent", teacher_views=2), "--teacher-views needs --teacher cached"),
        (lambda: RunConfig(distill=DistillConfig(teacher_views=2), train=TrainConfig(augment="none")),
         "--teacher-views needs --augment basic or strong"),
    ],
)
def test_bad_view_settings_are_refused(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_a_stored_config_from_before_the_flag_loads_without_views():
    stored = RunConfig().to_dict()
    del stored["distill"]["teacher_views"]
    assert RunConfig.from_dict(stored).distill.teacher_views == 0
    config = RunConfig(distill=DistillConfig(teacher_views=3))
    assert RunConfig.from_dict(config.to_dict()) == config
    assert config.compatible_with(RunConfig())  # a run with other views does not --resume this one


# (the CLI's one-line refusals of bad view flags: tests/test_cli_errors.py)


# ------------------------------------------------------------------ a lineage with stored views
def _config(**distill) -> RunConfig:
    return RunConfig(model=ModelSpec("mlp", "tiny"), gens=3, distill=DistillConfig(teacher_views=4, **distill),
                     train=TrainConfig(epochs=2, student_epochs=2, batch_size=32, lr=1e-2, augment="basic",
                                       mixup=0.2))


def test_a_lineage_teaches_on_stored_views_and_keeps_them_in_the_teachers_folders(tmp_path, blobs):
    logs: list[str] = []
    record = run_lineage(_config(), blobs, tmp_path / "run", progress=False, log=logs.append)
    gens = record["generations"]
    assert [g["status"] for g in gens] == ["done"] * 3
    assert "teacher_views" not in gens[0] and gens[1]["teacher_views"] == gens[2]["teacher_views"] == 4
    assert "on 4 stored views" in logs[0]
    assert gens[2]["teachers"] == [0, 1]  # the ensemble's members each scored the views
    for g in (0, 1):
        folder = tmp_path / "run" / f"gen_{g}"
        views = np.load(folder / "train_view_logits_k4_seed0.npy")
        clean = np.load(folder / "train_logits.npy")
        assert views.shape == (len(blobs.train), 4, blobs.num_classes) and np.isfinite(views).all()
        assert not np.allclose(views[:, 0], clean) and not np.allclose(views[:, 0], views[:, 1])
    assert not (tmp_path / "run" / "gen_2" / "train_view_logits_k4_seed0.npy").exists()  # taught nobody
    assert all(0.0 <= g["val_acc"] <= 1.0 for g in gens)


@pytest.mark.parametrize("views", [0, 4])
def test_in_the_driver_every_cached_row_is_the_teacher_on_the_batch_the_student_gets(tmp_path, blobs, monkeypatch,
                                                                                     views):
    """End to end: the cached row each step hands over equals the teacher's forward pass on the
    very images of that step (exactly, with views; far from it with clean-image rows)."""
    import rnn_jax.lineage.teaching as teaching

    real, gaps = teaching.batch_teacher_logits, []

    def checked(source, index, images, no_teacher, mix=None):
        rows = real(source, index, images, no_teacher, mix)
        if source.cached_logits is not None:
            params, batch_stats = source.members[0]
            gaps.append(float(np.abs(np.asarray(rows) - np.asarray(source.forward(params, batch_stats, images))).max()))
        return rows

    monkeypatch.setattr(teaching, "batch_teacher_logits", checked)
    config = _config()
    config = dataclasses.replace(config, gens=2, distill=DistillConfig(teacher_views=views, teacher_from="parent"),
                                 train=dataclasses.replace(config.train, mixup=0.0))
    run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    assert len(gaps) == 2 * (len(blobs.train) // 32)  # every step of the student's 2 epochs
    if views:
        assert max(gaps) < 1e-5
    else:
        assert min(gaps) > 0.1


def test_a_student_stopped_mid_generation_resumes_to_the_uninterrupted_numbers(tmp_path, blobs):
    clean, resumed, logs = stopped_and_resumed(dataclasses.replace(_config(), gens=2), blobs, tmp_path)
    assert "gen 1: resuming after epoch 1" in logs
    assert_same_metrics(resumed, clean)
    # the resumed student read the teacher's views from disk: the very array the clean run computed
    np.testing.assert_array_equal(np.load(tmp_path / "stopped" / "gen_0" / "train_view_logits_k4_seed0.npy"),
                                  np.load(tmp_path / "clean" / "gen_0" / "train_view_logits_k4_seed0.npy"))

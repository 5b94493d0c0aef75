"""Landmark gesture models: data format, features, models, deep supervision, lineages (HaGRID
annotations without images), export with explicit state, runtime and live."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn_jax.data.landmark_files import LandmarkSet, load_landmarks, save_landmarks
from rnn_jax.data.landmark_synthetic import builtin_landmarks
from rnn_jax.data.splits import split_by_person
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.hands.features import LEFT, RIGHT, FeatureSpec, augment_landmarks, landmark_features
from tests.conftest import REPO, shared_data

BANNED = ("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow", "tensorflow_datasets", "jax2onnx", "grain")


# --------------------------------------------------------------------------- features
def test_features_ignore_place_and_size_and_mirror_left_hands() -> None:
    hand = builtin_landmarks(people=1, per_class=1).landmarks[3]
    base = landmark_features(hand, RIGHT)
    moved = landmark_features(hand * 2.5 + np.array([40.0, -7.0, 3.0]), RIGHT)
    np.testing.assert_allclose(base, moved, atol=1e-5)
    assert np.allclose(base[0], 0) and np.isclose(np.linalg.norm(base[:, :2], axis=1).max(), 1)
    mirrored = hand.copy()
    mirrored[:, 0] *= -1
    np.testing.assert_allclose(landmark_features(mirrored, LEFT), base, atol=1e-5)  # a left hand = its mirror
    assert np.all(landmark_features(hand, RIGHT, FeatureSpec(use_z=False))[:, 2] == 0)
    assert np.all(landmark_features(np.zeros((21, 3)), RIGHT) == 0)  # no hand: zeros, not NaN


def test_augmentation_keeps_shape_and_the_wrist_and_is_seeded() -> None:
    x = landmark_features(builtin_landmarks(people=2, per_class=1).landmarks)[:, None]
    a = augment_landmarks(x, np.random.default_rng(0), "strong", mirror=True)
    b = augment_landmarks(x, np.random.default_rng(0), "strong", mirror=True)
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.allclose(a[..., 0, :], 0) and not np.allclose(a, x)
    assert np.array_equal(augment_landmarks(x, np.random.default_rng(0), "none"), x)  # untouched
    flipped = augment_landmarks(x, np.random.default_rng(0), "none", mirror=True)  # x negated, or not
    mirrored = x.copy()
    mirrored[..., 0] *= -1
    each = [np.array_equal(f, a) or np.array_equal(f, m) for f, a, m in zip(flipped, x, mirrored)]
    assert all(each) and any(np.array_equal(f, m) for f, m in zip(flipped, mirrored))
    with pytest.raises(ValueError, match="unknown landmark augmentation"):
        augment_landmarks(x, np.random.default_rng(0), "wild")


# --------------------------------------------------------------------------- files
def test_npz_round_trip_and_person_split(tmp_path: Path) -> None:
    data = builtin_landmarks(people=6, per_class=2)
    back = load_landmarks(save_landmarks(data, tmp_path / "x.npz"))
    assert np.array_equal(back.landmarks, data.landmarks) and back.class_names == data.class_names
    assert np.array_equal(back.person_ids, data.person_ids) and back.coords == "pixels"
    train, val = split_by_person(back, 0.34, seed=1)
    assert not set(train.person_ids) & set(val.person_ids) and len(train) + len(val) == len(data)


def _bad(data: LandmarkSet, problem: str) -> LandmarkSet:
    if problem == "shape":
        data.landmarks = data.landmarks[:, :20]
    elif problem == "nan":
        data.landmarks[2, 4, 1] = np.nan
    elif problem == "label":
        data.labels[0] = 99
    elif problem == "person":
        data.person_ids[1] = ""
    return data


@pytest.mark.parametrize("problem,message", [
    ("shape", "landmarks have shape"), ("nan", "NaN"), ("label", "not one of the 8 class_names"),
    ("person", "no person id")])
def test_bad_landmark_file_is_one_line_naming_file_and_problem(tmp_path: Path, problem: str, message: str) -> None:
    data = _bad(builtin_landmarks(people=2, per_class=1), problem)
    path = tmp_path / "bad.npz"
    np.savez(path, landmarks=data.landmarks, labels=data.labels, class_names=np.asarray(data.class_names),
             person_ids=data.person_ids, handedness=data.handedness, frame_index=data.frame_index)
    with pytest.raises(DataError, match=message) as info:
        load_landmarks(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unreadable_or_incomplete_file(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_landmarks(tmp_path / "junk.npz")
    np.savez(tmp_path / "part.npz", landmarks=np.zeros((2, 21, 3), np.float32))
    with pytest.raises(DataError, match="missing labels, class_names, person_ids"):
        load_landmarks(tmp_path / "part.npz")


def test_cli_bad_landmark_file_exits_2_with_one_line(tmp_path: Path) -> None:
    data = _bad(builtin_landmarks(people=2, per_class=1), "nan")
    folder = tmp_path / "d"
    folder.mkdir()
    np.savez(folder / "train.npz", landmarks=data.landmarks, labels=data.labels,
             class_names=np.asarray(data.class_names), person_ids=data.person_ids)
    proc = subprocess.run([sys.executable, "-m", "experiments.landmarks", "--data", str(folder), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "train.npz" in proc.stderr and "NaN" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "experiments.landmarks", "--model", "resnet", "--out",
                           str(tmp_path / "run2")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "landmark models are lmlp, lstm, trm" in proc.stderr


# --------------------------------------------------------------------------- HaGRID annotations
def _hagrid_tree(root: Path) -> Path:
    """A HaGRIDv2 annotation tree in the real schema (landmarks normalised 0..1, [x, y] only) and
    blank 640x480 photos (only their headers are read: the landmarks need the photo's aspect)."""
    import cv2

    data = builtin_landmarks(people=12, per_class=3, seed=3)
    names = list(data.class_names)[:4]
    for split, people in (("train", range(0, 9)), ("val", range(9, 12))):
        folder = root / "hagrid_annotations" / split
        folder.mkdir(parents=True)
        for gesture in names:
            anns = {}
            for i in np.flatnonzero(data.labels == names.index(gesture)):
                person = int(data.person_ids[i].split("-")[1])
                if person not in people:
                    continue
                xy = (data.landmarks[i, :, :2] / np.array([640.0, 480.0])).round(4).tolist()
                resting = (data.landmarks[i, ::-1, :2] / np.array([640.0, 480.0])).round(4).tolist()
                anns[f"{gesture}-{i:05d}"] = {
                    "bboxes": [[0.2, 0.2, 0.3, 0.3], [0.6, 0.5, 0.1, 0.1]], "labels": [gesture, "no_gesture"],
                    "user_id": f"user{person}", "hand_landmarks": [xy, resting],
                    "leading_hand": "left" if data.handedness[i] == LEFT else "right", "leading_conf": 1.0,
                    "united_bbox": None, "united_label": None, "meta": {"age": [30], "gender": ["x"], "race": ["y"]}}
            (folder / f"{gesture}.json").write_text(json.dumps(anns))
            for image_id in anns:
                (root / "hagrid_dataset" / gesture).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / "hagrid_dataset" / gesture / f"{image_id}.jpg"), np.zeros((480, 640, 3), np.uint8))
    return root


def test_hagrid_annotations_train_a_lineage_without_decoding_an_image(tmp_path: Path, monkeypatch) -> None:
    import cv2

    from experiments import landmarks as experiment
    from rnn_jax import preprocess

    def no_images(*_a, **_k):
        raise AssertionError("an image was decoded")

    root = _hagrid_tree(tmp_path / "hagrid")
    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "cache" / "decoded"))
    monkeypatch.setattr(cv2, "imread", no_images)
    monkeypatch.setattr(cv2, "imdecode", no_images)
    monkeypatch.setattr(preprocess, "read_image", no_images)
    out = tmp_path / "run"
    experiment.main(["--data", str(root), "--model", "lmlp", "--size", "tiny", "--gens", "2", "--epochs", "3",
                     "--batch-size", "16", "--out", str(out), "--no-progress"])
    record = json.loads((out / "lineage.json").read_text())
    assert [g["status"] for g in record["generations"]] == ["done", "done"]
    data = record["data"]
    assert data["crop_mode"] == "landmarks" and data["image_shape"] == [1, 21, 3] and len(data["class_names"]) == 5
    assert data["notes"]["landmarks"]["features"]["use_z"] is False  # HaGRID has no z
    assert data["notes"]["landmarks"]["people_in_train_and_val"] == 0


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", ["lmlp", "lstm", "trm"])
def test_step_by_step_equals_the_sequence_call(name: str) -> None:
    import jax.numpy as jnp

    from rnn_jax.models.registry import ModelSpec, create_model

    model = create_model(ModelSpec(name, "tiny"), (5, 21, 3), 4, seed=1)
    model.eval()
    x = np.random.default_rng(0).normal(size=(3, 5, 21, 3)).astype(np.float32)
    state = model.initial_state(3)
    for t in range(5):
        logits, state = model.step(jnp.asarray(x[:, t]), state)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(logits), atol=1e-5)
    assert state.shape == (3, model.state_size) and (model.state_size == 0) == (name == "lmlp")


def test_lstm_sizes_span_the_suite_and_trm_small_is_tiny() -> None:
    from flax import nnx

    from rnn_jax.models.registry import ModelSpec, count_params, create_model

    def params(name: str, size: str) -> int:
        return count_params(nnx.eval_shape(lambda: create_model(ModelSpec(name, size), (1, 21, 3), 10)))

    assert 0.4e6 < params("lstm", "tiny") < 0.6e6
    assert 30e6 < params("lstm", "xxlarge") < 40e6
    assert 60e3 < params("trm", "small") < 100e3


def test_deep_supervision_loss_weights_and_teacher_heads() -> None:
    import jax.numpy as jnp

    from rnn_jax.distill.losses import cross_entropy, deep_supervision_loss, distillation_kl

    rng = np.random.default_rng(0)
    heads = jnp.asarray(rng.normal(size=(3, 8, 5)), jnp.float32)
    teacher = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, 8))
    w = jnp.asarray([0.81, 0.9, 1.0])
    loss, parts = deep_supervision_loss(heads, w, labels, teacher, 0.0, 4.0)
    expected = sum(float(w[t]) * float(cross_entropy(heads[t], labels)) for t in range(3))
    assert np.isclose(float(loss), expected, rtol=1e-5)
    _, all_heads = deep_supervision_loss(heads, w, labels, teacher, 0.7, 4.0, teacher_heads="all")
    _, final = deep_supervision_loss(heads, w, labels, teacher, 0.7, 4.0, teacher_heads="final")
    assert np.isclose(float(final["kl"]), float(distillation_kl(heads[-1], teacher, 4.0)), rtol=1e-5)
    assert float(all_heads["kl"]) > float(final["kl"])


# --------------------------------------------------------------------------- export + runtime
@pytest.fixture(scope="module")
def trm_onnx(tmp_path_factory) -> tuple[Path, object, np.ndarray]:
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("trm", "tiny"), (1, 21, 3), 4, seed=0)
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=("a", "b", "c", "d"), state_size=model.state_size,
                        state_layout=state_layout(model))
    path = tmp_path_factory.mktemp("onnx") / "trm.onnx"
    result = export_landmark_model(model, info, path, frames)
    assert result.parity.n == 60 and result.parity.max_abs_logit_diff <= 1e-4
    return path, model, frames


def test_export_state_is_explicit_and_runtime_carries_it(trm_onnx) -> None:
    from rnn_jax.export.landmark_export import scanned_logits, stepped_logits
    from rnn_jax.runtime.landmark_predictor import HandStates, LandmarkPredictor

    path, model, frames = trm_onnx
    predictor = LandmarkPredictor.load(path)
    names = [i.name for i in predictor.session.get_inputs()], [o.name for o in predictor.session.get_outputs()]
    assert sorted(names[0]) == ["landmarks", "state"] and sorted(names[1]) == ["logits", "state_out"]
    assert predictor.info.state_size == model.state_size and "previous frame" in predictor.info.state_layout
    assert np.abs(stepped_logits(path, frames) - scanned_logits(model, frames)).max() <= 1e-4
    # the state matters: frame 10 from a zero state differs from frame 10 after frames 0..9
    fresh, _ = predictor.step(frames[10:11])
    assert not np.allclose(fresh, stepped_logits(path, frames)[10], atol=1e-4)

    class _Hand:
        def __init__(self, track_id: int) -> None:
            self.track_id, self.landmarks, self.handedness = track_id, np.random.rand(21, 3) * 100, "right"

    states = HandStates(predictor)
    assert states.classify([_Hand(1), _Hand(2)]).shape == (2, 4) and set(states.states) == {1, 2}
    states.classify([_Hand(2)])
    assert set(states.states) == {2}  # a lost hand's state is dropped
    states.reset()
    assert states.states == {}


def test_the_stateless_lmlp_exports_without_a_state_and_matches_jax_frame_by_frame(tmp_path: Path) -> None:
    from rnn_jax.export.landmark_export import (
        export_landmark_model,
        scanned_logits,
        state_layout,
        stepped_logits,
    )
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import HandStates, LandmarkInfo, LandmarkPredictor

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), 4, seed=0)
    assert model.state_size == 0
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=("a", "b", "c", "d"), state_size=0, state_layout=state_layout(model))
    result = export_landmark_model(model, info, tmp_path / "lmlp.onnx", frames)
    assert result.parity.n == 60 and result.parity.max_abs_logit_diff <= 1e-4
    predictor = LandmarkPredictor.load(tmp_path / "lmlp.onnx")
    assert [i.name for i in predictor.session.get_inputs()] == ["landmarks"]  # no state input
    assert [o.name for o in predictor.session.get_outputs()] == ["logits"]
    assert predictor.info.state_size == 0
    stepped = stepped_logits(tmp_path / "lmlp.onnx", frames)
    assert np.abs(stepped - scanned_logits(model, frames)).max() <= 1e-4
    # stateless: frame 10 alone, or all 60 frames in one batch, gives frame 10's logits of the sequence
    alone, state = predictor.step(frames[10:11])
    np.testing.assert_allclose(alone[0], stepped[10], atol=1e-5)
    assert state.shape == (1, 0)
    np.testing.assert_allclose(predictor.step(frames)[0], stepped, atol=1e-5)
    assert np.ptp(stepped, axis=0).max() > 1e-3  # each frame its own answer, not one constant

    class _Hand:
        def __init__(self, track_id: int) -> None:
            self.track_id, self.landmarks, self.handedness = track_id, np.random.rand(21, 3) * 100, "right"

    assert HandStates(predictor).classify([_Hand(1), _Hand(2)]).shape == (2, 4)


def test_landmark_file_is_refused_by_the_image_runtime_with_a_hint(trm_onnx) -> None:
    from rnn_jax.errors import ModelFileError
    from rnn_jax.runtime import Predictor
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor, load_predictor

    with pytest.raises(ModelFileError, match="is a landmark model"):
        Predictor.load(trm_onnx[0])
    assert isinstance(load_predictor(trm_onnx[0]), LandmarkPredictor)


def test_parity_gate_needs_a_sequence(tmp_path: Path) -> None:
    from rnn_jax.export.landmark_export import export_landmark_model
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("lstm", "tiny"), (1, 21, 3), 2)
    with pytest.raises(ConfigError, match=">= 50 frames"):
        export_landmark_model(model, LandmarkInfo(("a", "b"), state_size=model.state_size), tmp_path / "x.onnx",
                              np.zeros((10, 21, 3), np.float32))


def test_lineage_export_cli_writes_a_stateful_file(tmp_path: Path) -> None:
    from experiments import landmarks as experiment

    out = tmp_path / "run"
    experiment.main(["--model", "lstm", "--size", "tiny", "--gens", "1", "--epochs", "1", "--out", str(out),
                     "--no-progress"])
    onnx = tmp_path / "lstm.onnx"
    proc = subprocess.run([sys.executable, "tools/export_onnx.py", "--run", str(out), "--out", str(onnx)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(Path(str(onnx) + ".json").read_text())
    assert report["parity_frames"] >= 50 and report["parity_max_abs_logit_diff"] <= 1e-4
    assert report["state_size"] == 2 * 2 * 176 and report["latency_b1"]["step_ms"] > 0


# --------------------------------------------------------------------------- hand finder paths
# hand_models (tests/conftest.py): built once per machine; a failed build fails these tests


def test_extract_tool_counts_photos_without_hand_and_refuses_handless_video(hand_models: Path,
                                                                             tmp_path: Path) -> None:
    import cv2

    val = shared_data("sign-language-digits", "val")
    photos = tmp_path / "photos"
    for digit in ("3", "7"):
        (photos / digit).mkdir(parents=True)
        for p in sorted((val / digit).iterdir())[:4]:
            (photos / digit / p.name).write_bytes(p.read_bytes())
    cv2.imwrite(str(photos / "3" / "IMG_9990.JPG"), np.full((100, 100, 3), 128, np.uint8))  # no hand here
    out = tmp_path / "x.npz"
    proc = subprocess.run([sys.executable, "tools/extract_landmarks.py", "--photos", str(photos), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import re

    found, missed = map(int, re.search(r"9 photos: hand found in (\d+), no hand in (\d+)", proc.stdout).groups())
    assert found + missed == 9 and missed >= 1 and found >= 6  # the grey square is one of the missed
    data = load_landmarks(out)
    assert data.class_names == ("3", "7") and len(data) == found and data.coords == "pixels"
    assert "IMG_9990.JPG" not in {Path(s).name for s in data.sources}
    video = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for _ in range(5):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    proc = subprocess.run([sys.executable, "tools/extract_landmarks.py", "--video", str(video), "--label", "x",
                           "--out", str(tmp_path / "v.npz")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "no hand was found in any of its 5 frames" in proc.stderr


@pytest.mark.shared
def test_live_landmark_model_on_megamind_without_jax(hand_models: Path, trm_onnx, tmp_path: Path) -> None:
    """The live loop recognises the landmark model from its metadata; JAX and friends unimportable."""
    video = shared_data("video", "Megamind.avi")
    jsonl = tmp_path / "out.jsonl"
    code = f"""
import sys
for name in {BANNED!r}:
    sys.modules[name] = None
from rnn_jax.live import cli
rc = cli.main(["--onnx", {str(trm_onnx[0])!r}, "--source", {str(video)!r}, "--headless",
               "--jsonl", {str(jsonl)!r}, "--max-frames", "120"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BANNED!r} and sys.modules[m] is not None)
print("RC", rc, "LOADED", loaded)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "RC 0 LOADED []" in proc.stdout and "landmarks, state" in proc.stderr and "hands: on" in proc.stderr
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 120 and sum(bool(r["hands"]) for r in rows) > 50


def test_size_sweep_and_compare_run_landmark_models(tmp_path: Path) -> None:
    from experiments import sweep

    out = tmp_path / "sweep"
    sweep.main(["--experiment", "landmarks", "--model", "trm", "--sizes", "tiny,small", "--out", str(out),
                "--gens", "1", "--epochs", "1", "--no-progress"])
    table = (out / "compare.md").read_text()
    assert "trm-tiny" in table and "trm-small" in table


def test_windows_of_video_frames_train_recurrent_models_through_time(tmp_path: Path) -> None:
    from experiments import landmarks as experiment
    from rnn_jax.data.landmark_windows import make_windows

    frames = builtin_landmarks(people=4, per_class=6)
    windows = make_windows(frames, 4, stride=2)
    assert windows.landmarks.shape[1:] == (4, 21, 3) and len(windows) == 4 * 8 * 2
    assert np.all(np.diff(windows.frame_index, axis=1) == 1)
    photos = builtin_landmarks(people=2, per_class=1)
    photos.frame_index[:] = -1
    with pytest.raises(DataError, match="photos have frame_index -1"):
        make_windows(photos, 4)
    out = tmp_path / "run"
    experiment.main(["--model", "trm", "--size", "tiny", "--window", "4", "--gens", "2", "--epochs", "2",
                     "--batch-size", "16", "--out", str(out), "--no-progress"])
    record = json.loads((out / "lineage.json").read_text())
    assert record["data"]["image_shape"] == [4, 21, 3] and record["generations"][1]["status"] == "done"

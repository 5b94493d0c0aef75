"""Training streams (rnn_jax/data/streams.py): photos held as a video, the TRM's loss on several
frames of a window, and the experiments.landmarks --streams flag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn_jax.data.landmark_synthetic import builtin_landmarks
from rnn_jax.data.streams import StreamLayout, make_streams
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.hands.features import LEFT, RIGHT, FeatureSpec, landmark_features
from tests.conftest import REPO


def test_layout_frames_and_loss_frames() -> None:
    layout = StreamLayout(hold=5, settle=2, lead=1)
    assert layout.length == 11
    # the target's first frame (zero state), then offsets 2..4 of its second showing
    assert layout.loss_frames == (0, 8, 9, 10)
    for bad in (dict(hold=0), dict(hold=5, settle=5), dict(hold=5, settle=-1), dict(lead=0)):
        with pytest.raises(DataError):
            StreamLayout(**bad)


def test_streams_hold_the_target_after_another_class_and_are_seeded() -> None:
    data = builtin_landmarks(people=3, per_class=2)
    layout = StreamLayout(hold=4, settle=1)
    s = make_streams(data, layout, seed=3, per_example=2)
    assert s.landmarks.shape == (2 * len(data), layout.length, 21, 3) and s.is_sequence
    assert np.array_equal(s.labels, np.tile(data.labels, 2))
    lm = data.landmarks[np.tile(np.arange(len(data)), 2)]
    # lead and second showing are the target photo, held (equal frames)
    assert np.array_equal(s.landmarks[:, 0], lm)
    assert np.array_equal(s.landmarks[:, -layout.hold:], np.repeat(lm[:, None], layout.hold, 1))
    # the frames between are one photo of another class
    middle = s.landmarks[:, 1:1 + layout.hold]
    assert np.all(middle == middle[:, :1])
    for i in range(len(s)):
        matches = np.flatnonzero(np.all(np.abs(np.abs(data.landmarks) - np.abs(middle[i, 0])) < 1e-4, axis=(1, 2)))
        assert len(matches) and all(data.labels[m] != s.labels[i] for m in matches)
    assert s.notes["streams"]["loss_frames"] == list(layout.loss_frames)
    again = make_streams(data, layout, seed=3, per_example=2)
    assert np.array_equal(again.landmarks, s.landmarks)
    s.validate("streams")


def test_a_left_hand_before_a_right_target_is_mirrored_to_read_the_same() -> None:
    data = builtin_landmarks(people=2, per_class=1)
    data.handedness[:] = RIGHT
    data.handedness[data.labels != data.labels[0]] = LEFT  # every other class is a left hand
    layout = StreamLayout(hold=2, settle=0)
    s = make_streams(data, layout, seed=0)
    spec = FeatureSpec(mirror_left=True)
    i = int(np.flatnonzero(s.labels == data.labels[0])[0])  # a right target after a left photo
    prev = s.landmarks[i, 1]
    j = int(np.flatnonzero(np.all(np.abs(data.landmarks[:, :, 1] - prev[:, 1]) < 1e-4, axis=1))[0])
    assert data.handedness[j] == LEFT
    want = landmark_features(data.landmarks[j], LEFT, spec)
    got = landmark_features(prev, s.handedness[i], spec)
    assert np.allclose(want, got, atol=1e-5)


def test_streams_refuse_sequences_one_class_and_bad_counts() -> None:
    data = builtin_landmarks(people=2, per_class=1)
    with pytest.raises(DataError, match="per example"):
        make_streams(data, per_example=0)
    one = data.subset(np.flatnonzero(data.labels == 0))
    with pytest.raises(DataError, match="2 classes"):
        make_streams(one)
    seq = make_streams(data, StreamLayout(hold=2, settle=0))
    with pytest.raises(DataError, match="already holds sequences"):
        make_streams(seq)


def test_trm_loss_frames_give_every_named_frame_its_heads() -> None:
    import jax.numpy as jnp

    from rnn_jax.models import ModelSpec, create_model

    layout = StreamLayout(hold=3, settle=1)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, layout.length, 21, 3)), jnp.float32)
    plain = create_model(ModelSpec("trm", "tiny"), (layout.length, 21, 3), 5, seed=0)
    model = create_model(ModelSpec("trm", "tiny", loss_frames=list(layout.loss_frames)), (layout.length, 21, 3), 5,
                         seed=0)
    plain.eval()
    model.eval()
    heads = model.supervised_logits(x)
    k, d = len(layout.loss_frames), model.deep_steps
    assert heads.shape == (k * d, 2, 5)
    per_frame = model.frame_logits(x)[0]
    for n, t in enumerate(layout.loss_frames):  # each frame's last head is its inference logits
        assert np.allclose(heads[(n + 1) * d - 1], per_frame[:, t], atol=1e-5)
    # the last frame's heads are the plain model's (same weights), and the weights are a mean over frames
    assert np.allclose(heads[-d:], plain.supervised_logits(x), atol=1e-5)
    assert np.isclose(float(model.head_weights().sum()), float(plain.head_weights().sum()), atol=1e-6)
    assert np.allclose(model(x), plain(x), atol=1e-5)  # inference: the scan computes the unrolled loop's logits
    assert np.allclose(model.frame_logits(x)[1], plain.frame_logits(x)[1], atol=1e-5)
    bad = create_model(ModelSpec("trm", "tiny", loss_frames=(0, 2)), (4, 21, 3), 5, seed=0)
    with pytest.raises(ValueError, match="end with"):
        bad.supervised_logits(jnp.zeros((1, 4, 21, 3)))
    with pytest.raises(ConfigError, match="needs the trm"):
        ModelSpec("lstm", "tiny", loss_frames=(0,))


def test_streams_flag_trains_and_exports_the_trm(tmp_path: Path) -> None:
    from experiments import landmarks as experiment

    out = tmp_path / "run"
    experiment.main(["--model", "trm", "--size", "tiny", "--streams", "on", "--stream-hold", "3",
                     "--stream-settle", "1", "--gens", "1", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                     "--no-progress"])
    record = json.loads((out / "lineage.json").read_text())
    assert record["data"]["image_shape"] == [7, 21, 3]
    assert record["data"]["notes"]["landmarks"]["train_notes"]["streams"]["loss_frames"] == [0, 5, 6]
    assert record["config"]["model"]["loss_frames"] == [0, 5, 6]
    onnx = tmp_path / "trm.onnx"
    proc = subprocess.run([sys.executable, "tools/export_onnx.py", "--run", str(out), "--out", str(onnx)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("flags, message", [
    (["--model", "lstm", "--streams", "on"], "--model trm"),
    (["--streams", "on", "--window", "4"], "exclude each other"),
    (["--streams", "on", "--stream-hold", "3", "--stream-settle", "3"], "--stream-settle"),
])
def test_streams_flag_errors_are_one_line_exit_2(tmp_path: Path, flags: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "experiments.landmarks", *flags, "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_streams_default_on_for_the_trm_without_window() -> None:
    from experiments.landmarks import build_parser, stream_layout

    parse = build_parser().parse_args
    assert stream_layout(parse([])).loss_frames == StreamLayout().loss_frames  # trm is the default model
    assert stream_layout(parse(["--model", "lstm"])) is None
    assert stream_layout(parse(["--window", "4"])) is None
    assert stream_layout(parse(["--streams", "off"])) is None

"""rnn_jax.capture: saving gesture frames into <out>/<split>/<label>/*.jpg from a video source."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.capture import CaptureConfig, capture_gestures, main
from rnn_jax.errors import ConfigError
from rnn_jax.live.sources import open_source


def write_test_video(path: Path, n: int, size: tuple[int, int] = (80, 60)) -> Path:
    """MJPG .avi whose frame i is a flat grey of value 10 * i (so frames are identifiable)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("rec") / "clip.avi", 20)


def grey_levels(paths: list[Path]) -> list[int]:
    return [round(float(cv2.imread(str(p)).mean()) / 10) for p in paths]


def test_cli_records_class_folder_layout(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["--label", "like", "--out", str(tmp_path / "data"), "--source", str(video),
               "--count", "5", "--every", "3", "--countdown", "0", "--headless"])
    assert rc == 0
    files = sorted((tmp_path / "data" / "train" / "like").glob("*.jpg"))
    assert len(files) == 5
    assert all(re.fullmatch(r"\d{8}-\d{6}_\d{4}\.jpg", f.name) for f in files)
    assert grey_levels(files) == [0, 3, 6, 9, 12]  # every 3rd frame
    assert cv2.imread(str(files[0])).shape == (60, 80, 3)
    assert "saved 5 images" in capsys.readouterr().err


def test_val_split_and_roi_crop(video: Path, tmp_path: Path) -> None:
    cfg = CaptureConfig(label="fist", out=tmp_path, split="val", count=2, countdown=0, roi=True)
    with open_source(video) as src:
        result = capture_gestures(cfg, src, log=io.StringIO())
    assert result.complete and result.folder == tmp_path / "val" / "fist"
    assert cv2.imread(str(result.saved[0])).shape == (36, 36, 3)  # 0.6 * 60 px square


def test_source_ending_early_is_reported(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["--label", "ok", "--out", str(tmp_path), "--source", str(video), "--count", "50",
               "--countdown", "0", "--headless"])
    assert rc == 0
    assert len(list((tmp_path / "train" / "ok").glob("*.jpg"))) == 20
    assert "source ended after 20 of 50" in capsys.readouterr().err


def test_headless_countdown_is_printed_and_waits_without_losing_frames(video: Path, tmp_path: Path) -> None:
    log, sleeps = io.StringIO(), []
    cfg = CaptureConfig(label="peace", out=tmp_path, count=2, countdown=2.5)
    with open_source(video) as src:
        result = capture_gestures(cfg, src, log=log, sleep=sleeps.append)
    assert "in 3..." in log.getvalue() and "in 1..." in log.getvalue()
    assert sleeps == pytest.approx([0.5, 1.0, 1.0])
    assert grey_levels(list(result.saved)) == [0, 1]  # a file source is not skipped ahead


def test_second_session_never_overwrites(video: Path, tmp_path: Path) -> None:
    cfg = CaptureConfig(label="x", out=tmp_path, count=3, countdown=0)
    for _ in range(2):
        with open_source(video) as src:
            capture_gestures(cfg, src, log=io.StringIO())
    assert len(list((tmp_path / "train" / "x").glob("*.jpg"))) == 6


@pytest.mark.parametrize("kwargs", [
    {"label": "../up"}, {"label": "a/b"}, {"label": "  "}, {"split": "test"}, {"count": 0},
    {"every": 0}, {"countdown": -1}, {"roi_fraction": 2.0},
])
def test_bad_config_is_rejected(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CaptureConfig(**{"label": "like", "out": tmp_path, **kwargs})


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--label", "a/b", "--out", str(tmp_path), "--headless"]) == 2
    assert capsys.readouterr().err.startswith("error: label 'a/b' cannot be a folder name")
    assert main(["--label", "a", "--out", str(tmp_path), "--source", str(tmp_path / "no.avi"),
                 "--headless"]) == 2
    assert capsys.readouterr().err.startswith("error: no such file or folder")
    assert main(["--label", "a", "--out", str(tmp_path), "--source", "99", "--headless"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot open camera 99")


def test_window_preview_with_a_fake_gui(video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Window mode without a display: the countdown is drawn, then q stops recording early."""
    shown: list[np.ndarray] = []
    keys = itertools.repeat(-1)  # no key pressed
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    cfg = CaptureConfig(label="wave", out=tmp_path, count=3, countdown=0.05)
    with open_source(video) as src:
        result = capture_gestures(cfg, src, show=True)
    assert result.complete and len(shown) >= 4  # >= 1 countdown frame + 3 recording frames
    shown.clear()
    keys = iter([-1, ord("q")])  # type: ignore[assignment]
    with open_source(video) as src:
        stopped = capture_gestures(CaptureConfig(label="wave", out=tmp_path, count=10, countdown=0), src,
                                  show=True)
    assert len(stopped.saved) == 2 and not stopped.complete and not stopped.source_ended


def test_the_old_module_name_still_captures(video: Path, tmp_path: Path) -> None:
    """`python -m rnn_jax.record` (the README's older command) runs the same capture."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "rnn_jax.record", "--label", "ok", "--out", str(tmp_path),
                           "--source", str(video), "--count", "2", "--countdown", "0", "--headless"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "train" / "ok").glob("*.jpg"))) == 2

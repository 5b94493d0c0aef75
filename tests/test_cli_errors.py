"""Bad input on the command line: exit code 2 and one readable line, no traceback."""

from __future__ import annotations

import pytest

from experiments import fashion_mnist, hagrid
from rnn_jax.errors import main_guard


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "/nonexistent/hagrid"], "does not exist"),
        (["--alpha", "1.5"], "--alpha must be in [0, 1]"),
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--gens", "0"], "--gens must be >= 1"),
        (["--size", "huge"], "unknown size 'huge'"),
        (["--image-size", "3"], "--image-size must be between"),
        (["--teacher", "consistent", "--ema-decay", "1.5"], "--ema-decay"),
        (["--teacher", "cached", "--teacher-views", "-1"], "--teacher-views must be an integer >= 0"),
        (["--teacher", "consistent", "--teacher-views", "4"], "--teacher-views needs --teacher cached"),
        (["--teacher", "cached", "--teacher-views", "4", "--augment", "none"], "--teacher-views needs --augment"),
    ],
)
def test_hagrid_cli_rejects_bad_input_with_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main_guard(hagrid.main, [*argv, "--out", str(tmp_path / "run"), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_folder_with_no_images_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty" / "train" / "like").mkdir(parents=True)
    with pytest.raises(SystemExit):
        main_guard(hagrid.main, ["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--no-progress"])
    assert capsys.readouterr().err.startswith("error: ")


def test_idx_folder_missing_files_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "idx").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main_guard(fashion_mnist.main, ["--data", str(tmp_path / "idx"), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_debug_flag_shows_the_traceback(tmp_path):
    from rnn_jax.errors import ConfigError

    with pytest.raises(ConfigError):
        main_guard(hagrid.main, ["--alpha", "2", "--debug", "--out", str(tmp_path / "run")])


def test_a_diverged_generation_makes_the_cli_exit_non_zero(tmp_path, capsys):
    from tests.conftest import make_blobs_dataset, write_idx

    blobs = make_blobs_dataset(n_train=300, n_val=20, size=28)
    data = write_idx(tmp_path / "idx", blobs.train.images[..., 0], blobs.train.labels,
                     blobs.test.images[..., 0], blobs.test.labels)
    with pytest.raises(SystemExit) as exit_info:
        main_guard(fashion_mnist.main, ["--data", str(data), "--out", str(tmp_path / "run"), "--gens", "2",
                                        "--epochs", "1", "--batch-size", "32", "--model", "mlp", "--size", "tiny",
                                        "--lr", "1e30", "--optimizer", "sgd", "--no-progress"])
    assert exit_info.value.code == 1
    assert "generation 0 failed" in capsys.readouterr().err


def _one_line_error(stderr: str, exit_info) -> str:
    """The CLI refused: exit 2, and its last stderr line is the one error line (no traceback)."""
    assert exit_info.value.code == 2
    err = stderr.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in line for line in err)
    return err[-1]


@pytest.mark.parametrize("layout", ["flat", "split"])
def test_a_single_class_is_refused_not_scored_perfect(tmp_path, capsys, layout):
    """Issue 20, mend 1: one class folder used to train and report test acc 1.0000."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    splits = ("",) if layout == "flat" else ("train", "val")
    for split in splits:
        folder = tmp_path / "data" / split / "like"
        folder.mkdir(parents=True)
        for i in range(12):
            cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main_guard(hagrid.main, ["--data", str(tmp_path / "data"), "--out", str(run), "--gens", "1",
                                 "--epochs", "1", "--batch-size", "4", "--model", "mlp", "--size", "tiny",
                                 "--image-size", "16", "--no-progress"])
    line = _one_line_error(capsys.readouterr().err, exit_info)
    assert "needs at least two" in line and "like" in line
    assert not run.exists()  # a refused command leaves no run folder behind


class _DataTouched(Exception):
    """Raised by the stand-in data loader: the CLI reached for data before refusing its flags."""


@pytest.mark.parametrize(("case", "message"), [
    ("gens", "--gens must be >= 1"),
    ("image_size", "--image-size must be between"),
    ("out_holds_a_run", "already holds a run"),
    ("resume_nothing", "holds no run to resume"),
    ("init_from_nothing", "is not an rnn-jax run"),
])
def test_the_whole_configuration_is_checked_before_any_data(tmp_path, capsys, monkeypatch, case, message):
    """Issue 20, mend 2: `--gens 0` used to print the built-in-demo banner before refusing,
    and a bad --out/--resume/--init-from was found only after the data had loaded."""
    import experiments.hagrid as hagrid_module
    import rnn_jax.data.registry as registry

    def no_data(*_args, **_kwargs):
        raise _DataTouched

    monkeypatch.setattr(registry, "load_dataset", no_data)
    monkeypatch.setattr(hagrid_module, "load_dataset", no_data)
    monkeypatch.delenv("RNN_JAX_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data/hagrid: the built-in demo set would be announced
    run = tmp_path / "run"
    argv = {"gens": ["--gens", "0"], "image_size": ["--image-size", "3"], "out_holds_a_run": [],
            "resume_nothing": ["--resume"], "init_from_nothing": ["--init-from", str(tmp_path / "nothing")]}[case]
    if case == "out_holds_a_run":
        run.mkdir()
        (run / "lineage.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main_guard(hagrid.main, [*argv, "--out", str(run), "--no-progress"])
    captured = capsys.readouterr()
    assert message in _one_line_error(captured.err, exit_info)
    assert "BUILT-IN DEMO" not in captured.out

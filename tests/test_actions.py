"""Gesture -> action (rnn_jax.live.actions): mapping files, --on, debounce, cooldown, timeout,
never blocking the loop, outcomes in the JSONL, the Python callback, and the model's threshold."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import make_fixture_info, write_fixture_onnx

from rnn_jax.errors import ConfigError
from rnn_jax.live import iter_predictions
from rnn_jax.live.actions import (
    Action,
    ActionRunner,
    build_runner,
    load_actions,
    make_action,
    parse_on,
)
from rnn_jax.live.cli import main
from rnn_jax.live.smoothing import GestureEvent

BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
PY = sys.executable


def write_video(path: Path, colours: list[str]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for name in colours:
        writer.write(np.full((48, 64, 3), BGR[name], np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("actions")
    return {
        "model": write_fixture_onnx(root / "colours.onnx"),
        # red starts, ends, then starts again: two "started" events for red, one for blue
        "video": write_video(root / "rbr.avi", ["red"] * 5 + ["blue"] * 5 + ["red"] * 5),
        "root": root,
    }


def append_cmd(path: Path, word: str) -> list[str]:
    """A real command (no shell) that appends one line to ``path``."""
    return [PY, "-c", f"open({str(path)!r}, 'a').write({word!r} + '\\n')"]


def started(label: str, frame: int, hand: int | None = None) -> GestureEvent:
    return GestureEvent("started", label, frame, 0.9, hand=hand)


def ended(label: str, frame: int, hand: int | None = None) -> GestureEvent:
    return GestureEvent("ended", label, frame, 0.2, duration_frames=1, reason="changed", hand=hand)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------- parsing
def test_mapping_forms(tmp_path: Path) -> None:
    assert make_action("like", ["a", "b"]).command == ("a", "b")
    assert make_action("like", "notify-send 'two words'").command == ("notify-send", "two words")
    a = make_action("palm", {"command": "echo hi > x", "shell": True, "timeout": 2, "cooldown": 0})
    assert (a.command, a.shell, a.timeout_s, a.cooldown_s) == ("echo hi > x", True, 2.0, 0.0)
    on = parse_on("like = notify-send hi there", timeout_s=3, cooldown_s=4)
    assert (on.gesture, on.command, on.timeout_s, on.cooldown_s, on.shell) == (
        "like", ("notify-send", "hi", "there"), 3, 4, False)
    toml = tmp_path / "a.toml"
    toml.write_text('timeout = 5\ncooldown = 2\n[on]\nlike = ["x", "y"]\n'
                    'palm = { command = "echo 1", shell = true, cooldown = 0.5 }\n')
    like, palm = load_actions(toml)
    assert (like.command, like.timeout_s, like.cooldown_s) == (("x", "y"), 5.0, 2.0)
    assert (palm.shell, palm.cooldown_s, palm.timeout_s) == (True, 0.5, 5.0)
    js = tmp_path / "a.json"
    js.write_text(json.dumps({"on": {"like": ["x"], "fist": {"command": ["y", "z"], "timeout": 1}}}))
    assert [(a.gesture, a.command, a.timeout_s) for a in load_actions(js)] == [
        ("like", ("x",), 10.0), ("fist", ("y", "z"), 1.0)]


@pytest.mark.parametrize(("name", "text", "match"), [
    ("a.toml", "[on\nlike = 1", "not valid TOML"),
    ("a.json", "{", "not valid JSON"),
    ("a.yaml", "on: {}", "must end in .toml or .json"),
    ("a.json", "[]", "top level must be"),
    ("a.json", '{"on": {}}', "non-empty 'on' table"),
    ("a.json", '{"actions": {"like": ["x"]}}', "unknown key(s) ['actions']"),
    ("a.json", '{"on": {"like": 3}}', "must be a list of strings or a string"),
    ("a.json", '{"on": {"like": []}}', "non-empty list"),
    ("a.json", '{"on": {"like": ["x", 2]}}', "non-empty list of non-empty strings"),
    ("a.json", '{"on": {"like": {"cmd": "x"}}}', "unknown key(s) ['cmd']"),
    ("a.json", '{"on": {"like": {"shell": true}}}', "has no command"),
    ("a.json", '{"on": {"like": {"command": ["x"], "shell": true}}}', "needs the command as one string"),
    ("a.json", '{"on": {"like": {"command": "x", "shell": "yes"}}}', "must be true or false"),
    ("a.json", '{"timeout": 0, "on": {"like": "x"}}', "must be > 0 seconds"),
    ("a.json", '{"cooldown": "1s", "on": {"like": "x"}}', "must be a number of seconds"),
    ("a.json", '{"on": {"like": "x \'unclosed"}}', "cannot split the command"),
])
def test_bad_mapping_files_are_one_line_errors(tmp_path: Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_actions(path)
    assert match in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("on", "match"), [("like", "GESTURE=COMMAND"), ("=x", "GESTURE=COMMAND"),
                                           ("like=", "GESTURE=COMMAND")])
def test_bad_on_flags(on: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_on(on)


def test_unknown_gesture_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no model here recognises gesture 'lik'; known: blue, green, red"):
        build_runner(on=["lik=x"], known_gestures=("red", "green", "blue"))
    assert build_runner() is None


# ------------------------------------------------------- debounce and cooldown
def test_debounce_per_hand_and_cooldown_with_a_fake_clock() -> None:
    clock = FakeClock()
    runner = ActionRunner([Action("like", ("x",), cooldown_s=2.0)], dry_run=True, clock=clock)
    status = lambda events: [(r.get("hand"), r["status"], r.get("reason")) for r in runner.handle(events)]  # noqa: E731
    assert status([started("like", 0, hand=1)]) == [(1, "dry-run", None)]
    assert status([started("like", 1, hand=1)]) == []  # not ended on hand 1: debounced, not even a skip
    clock.now += 0.5
    assert status([started("like", 2, hand=2)]) == [(2, "skipped", "cooldown")]  # another hand, in cooldown
    assert status([ended("like", 3, hand=1), started("like", 3, hand=1)]) == [(1, "skipped", "cooldown")]
    clock.now += 2.0
    assert status([started("like", 4, hand=1)]) == []  # still active since frame 3 (skipped starts count)
    assert status([ended("like", 5, hand=1), started("like", 6, hand=1)]) == [(1, "dry-run", None)]
    assert status([started("fist", 7)]) == []  # unmapped
    assert runner.fired == 2 and runner.counts == {"dry-run": 2, "skipped": 2}
    assert "2 fired" in runner.summary()


# ------------------------------------------- real commands through the live loop
def test_a_real_command_runs_exactly_once_per_gesture_start(media: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    on = {"red": {"command": append_cmd(log, "red"), "cooldown": 0},
          "blue": {"command": append_cmd(log, "blue"), "cooldown": 0}}
    with iter_predictions(media["model"], media["video"], smoothing="none", stable_frames=2, threads=1,
                          on_gesture=on) as stream:
        records = []
        for rec in stream:
            records.append(rec)
            if rec.index == 9:  # let the first red run finish, or the second start is skipped as "busy"
                stream.actions.wait()
        stream.finish()
        late = stream.finish_actions()
    fired = [(a["action"], a["frame"]) for r in records for a in r.actions if a["status"] == "launched"]
    assert fired == [("red", 1), ("blue", 6), ("red", 11)]
    outcomes = [a for r in records for a in r.actions if a["status"] != "launched"] + late
    assert sorted(a["status"] for a in outcomes) == ["ok", "ok", "ok"]
    assert sorted(log.read_text().split()) == ["blue", "red", "red"]


@pytest.mark.skipif(os.name != "posix", reason="the shell line below is POSIX sh")
def test_a_shell_true_command_runs_in_a_shell_from_the_mapping_file(media: dict[str, Path], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """`shell = true` runs the string through the shell (redirects, `;`, variables work); the same
    string without it is split and run as plain arguments (echo prints to the void, no file)."""
    log, plain = tmp_path / "log.txt", tmp_path / "plain.txt"
    mapping = tmp_path / "map.toml"
    mapping.write_text("[on]\n"
                       f"blue = {{ command = 'x=sh; echo \"$x ran\" >> {log}', shell = true, cooldown = 0 }}\n"
                       f"red = {{ command = 'echo red >> {plain}', cooldown = 0 }}\n")
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--headless", "--threads", "1",
               "--smoothing", "none", "--stable-frames", "2", "--actions", str(mapping)])
    assert rc == 0, capsys.readouterr().err
    assert log.read_text() == "sh ran\n"  # one blue start, through a shell
    assert not plain.exists()  # no shell: '>>' was an argument of echo


def test_cooldown_through_the_loop(media: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with iter_predictions(media["model"], media["video"], smoothing="none", stable_frames=2, threads=1,
                          on_gesture={"red": append_cmd(log, "red")}, action_cooldown=3600) as stream:
        records = list(stream)
        stream.finish_actions()
    assert [(a["frame"], a["status"]) for r in records for a in r.actions if a["status"] != "ok"] == [
        (1, "launched"), (11, "skipped")]
    assert log.read_text().split() == ["red"]


def test_a_hanging_command_never_stalls_the_loop(media: dict[str, Path], tmp_path: Path) -> None:
    """The command cannot finish before the loop is over: it waits for a file the test writes afterwards."""
    gate = tmp_path / "gate"
    wait = [PY, "-c", f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"]
    with iter_predictions(media["model"], media["video"], smoothing="none", stable_frames=2, threads=1,
                          on_gesture={"red": {"command": wait, "cooldown": 0, "timeout": 600}}) as stream:
        records = list(stream)  # all 15 frames while the first run is still waiting
        stream.finish()
        assert stream.actions is not None and stream.actions.running == 1
        gate.touch()
        late = stream.finish_actions()
    assert len(records) == 15
    statuses = [(a["frame"], a["status"], a.get("reason")) for r in records for a in r.actions]
    assert statuses == [(1, "launched", None), (11, "skipped", "busy")]  # never piles up
    assert [(a["frame"], a["status"]) for a in late] == [(1, "ok")]


def test_timeout_kills_and_failures_are_outcomes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = [PY, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"]
    actions = [Action("a", tuple(hang), timeout_s=1.5, cooldown_s=0),
               Action("b", (PY, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"), cooldown_s=0),
               Action("c", ("/no/such/program-rnn-jax",), cooldown_s=0),
               Action("d", lambda event: 1 / 0, cooldown_s=0)]
    runner = ActionRunner(actions)
    fired = runner.handle([started("a", 0), started("b", 0), started("c", 0), started("d", 0)])
    assert [r["status"] for r in fired] == ["launched"] * 4
    by = {r["action"]: r for r in runner.close()}  # bounded by the 1.5 s timeout
    assert by["a"]["status"] == "timeout"
    with pytest.raises(ProcessLookupError):  # killed (its process group), not left behind
        os.kill(int(pid_file.read_text()), 0)
    assert (by["b"]["status"], by["b"]["returncode"], by["b"]["stderr"]) == ("failed", 3, "boom")
    assert by["c"]["status"] == "error" and "cannot run" in by["c"]["error"]
    assert by["d"]["status"] == "error" and "ZeroDivisionError" in by["d"]["error"]
    assert runner.running == 0


def test_python_callback_gets_each_start(media: dict[str, Path]) -> None:
    seen: list[tuple[str, int]] = []
    with iter_predictions(media["model"], media["video"], smoothing="none", stable_frames=2, threads=1,
                          on_gesture=lambda e: seen.append((e.label, e.frame)), action_cooldown=0) as stream:
        for rec in stream:
            if rec.index == 9:
                stream.actions.wait()
        stream.finish_actions()
    assert sorted(seen) == [("blue", 6), ("red", 1), ("red", 11)]


# ----------------------------------------------------------------------- CLI
def test_cli_on_flags_jsonl_and_stdout(media: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    log, out = tmp_path / "log.txt", tmp_path / "f.jsonl"
    cmd = " ".join(f'"{a}"' if " " in a or "'" in a else a for a in append_cmd(log, "blue"))
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--headless", "--threads", "1",
               "--smoothing", "none", "--stable-frames", "2", "--jsonl", str(out), "--on", f"blue={cmd}"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert log.read_text().split() == ["blue"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    frames = [r for r in rows if "frame" in r and "event" not in r]
    assert len(frames) == 15 and all("actions" in r for r in frames)
    recorded = [a["status"] for r in frames for a in r["actions"]] + [
        r["status"] for r in rows if r.get("event") == "action"]
    assert sorted(recorded) == ["launched", "ok"]
    printed = [json.loads(line) for line in captured.out.splitlines()]
    assert sorted(e["status"] for e in printed if e["event"] == "action") == ["launched", "ok"]
    assert "actions: blue" in captured.err and "actions: 1 fired" in captured.err


def test_cli_dry_run_runs_nothing(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = tmp_path / "log.txt"
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"cooldown": 0, "on": {"red": append_cmd(log, "red")}}))
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--headless", "--threads", "1",
               "--smoothing", "none", "--stable-frames", "2", "--actions", str(mapping), "--dry-run"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert not log.exists()
    printed = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["action"], e["frame"], e["status"]) for e in printed if e["event"] == "action"] == [
        ("red", 1, "dry-run"), ("red", 11, "dry-run")]
    assert "dry run" in captured.err


@pytest.mark.parametrize(("extra", "match"), [
    (["--on", "purple=echo"], "error: --on: no model here recognises gesture 'purple'; known: blue, green, red"),
    (["--on", "red"], "error: --on wants GESTURE=COMMAND"),
    (["--actions", "no/such.toml"], "error: actions file not found: no/such.toml"),
    (["--on", "red=echo", "--action-timeout", "0"], "error: --on: timeout for 'red' must be > 0"),
])
def test_cli_bad_actions_exit_2_with_one_line(media: dict[str, Path], capsys: pytest.CaptureFixture,
                                              extra: list[str], match: str) -> None:
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--headless", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(match) and err.count("\n") == 1, err


def test_cli_bad_mapping_file_exit_2(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[on]\nred = 42\n")
    assert main(["--onnx", str(media["model"]), "--headless", "--actions", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: the command for 'red' must be") and err.count("\n") == 1


# ------------------------------------------------- threshold from the model file
# the fixture model, scaled down, is ~0.7 sure of a red or blue frame: a threshold of 0.6 or 0.4
# shows the colours, 0.83 or 0.9 shows nothing
MODERATE = 0.0061


@pytest.mark.parametrize(("reject", "flag", "shown", "threshold", "colours_shown"), [
    (None, [], "threshold 0.6 (default)", 0.6, True),
    (0.83, [], "threshold 0.83 (model file)", 0.83, False),
    (0.83, ["--threshold", "0.4"], "threshold 0.4 (--threshold)", 0.4, True),
    (0.4, ["--threshold", "0.9"], "threshold 0.9 (--threshold)", 0.9, False),
])
def test_threshold_defaults_to_the_models_reject_threshold(
        media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, reject: float | None,
        flag: list[str], shown: str, threshold: float, colours_shown: bool) -> None:
    model = write_fixture_onnx(tmp_path / "m.onnx", scale=MODERATE, info=make_fixture_info(reject_threshold=reject))
    out = tmp_path / "f.jsonl"
    rc = main(["--onnx", str(model), "--source", str(media["video"]), "--headless", "--smoothing", "none",
               "--stable-frames", "1", "--jsonl", str(out), *flag])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert shown in err
    rows = [json.loads(line) for line in out.read_text().splitlines() if '"frame"' in line]
    assert all(0.6 < r["confidence"] < 0.83 for r in rows)  # the premise: between the thresholds
    labels = {r["label"] for r in rows}
    assert labels == ({"red", "blue"} if colours_shown else {None})
    with iter_predictions(model, media["video"], max_frames=1, threshold=float(flag[1]) if flag else None,
                          threads=1) as stream:
        assert stream.config.gesture.threshold == pytest.approx(threshold)

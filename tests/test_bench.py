"""Smoke test of tools/bench.py: the cheap sections run, print a table and write the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "tools" / "bench.py"


def test_help_lists_every_section():
    out = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("peak", "train", "teacher", "data", "generation", "onnx", "live", "scan", "presets", "allocator"):
        assert name in out


def test_quick_runs_every_row_the_issue_asks_for():
    """--quick must cover: step vs PyTorch (+ GFLOP/s), teacher, data, generation, ONNX, live."""
    from tools.benchkit.sections import QUICK_SECTIONS, SECTIONS

    assert set(QUICK_SECTIONS) >= {"peak", "train", "teacher", "data", "generation", "onnx", "live"}
    assert set(QUICK_SECTIONS) <= set(SECTIONS)


def test_the_benchmark_is_not_shipped_in_the_library():
    """The installed package carries no benchmark code and never imports torch (issue 20, mend 4)."""
    import ast

    # (a merged checkout may keep an ignored rnn_jax/bench/__pycache__: look for sources only)
    assert not list((REPO / "rnn_jax" / "bench").glob("*.py")), "benchmark helpers belong in tools/benchkit/"
    assert (REPO / "tools" / "benchkit" / "torch_ref.py").is_file()
    for path in sorted((REPO / "rnn_jax").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "torch" or n.startswith("tools") for n in names), path


def test_unknown_section_is_refused():
    proc = subprocess.run([sys.executable, str(BENCH), "--only", "nonsense"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown section" in (proc.stderr + proc.stdout)


def test_quick_peak_and_train_side_by_side(tmp_path):
    pytest.importorskip("torch", reason="the PyTorch reference needs the bench extra: pip install 'rnn-jax[bench]'")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "peak,train", "--models", "mlp-tiny",
         "--rounds", "1", "--block", "0.1", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Train step" in proc.stdout and "JAX/PT" in proc.stdout
    assert "load average" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result["sections"]) == {"peak", "train"}
    (row,) = result["sections"]["train"]["records"]
    assert row["model"] == "mlp-tiny"
    assert row["jax_img_s"] > 0 and row["pytorch_img_s"] > 0
    assert row["jax_over_pytorch"] == pytest.approx(row["jax_img_s"] / row["pytorch_img_s"])
    assert len(row["load"]) == 3
    assert result["sections"]["peak"]["records"][0]["gflops"] > 0


def test_the_step_verdict_uses_paired_rounds_and_flags_a_split_decision():
    """Round-by-round ratios decide; an interquartile range across 1.0 is no verdict."""
    import importlib.util

    from tools.benchkit.timing import Measured, paired_ratio

    spec = importlib.util.spec_from_file_location("bench_cli", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # the machine slows down over the rounds; JAX is 10% behind in every round
    jax_rates, torch_rates = Measured("jax", [900, 700, 500, 300]), Measured("pytorch 2t", [1000, 778, 556, 333])
    median, q25, q75 = paired_ratio(jax_rates, torch_rates)
    assert abs(median - 0.9) < 0.01 and q25 > 0.89 and q75 < 0.91
    ratio, note = bench.step_verdict({"jax_over_pytorch": 0.9,
                                      "jax_over_pytorch_paired": {"median": median, "q25": q25, "q75": q75}})
    assert abs(ratio - 0.9) < 0.01 and "within this run's noise" not in note
    ratio, note = bench.step_verdict({"jax_over_pytorch": 1.04,
                                      "jax_over_pytorch_paired": {"median": 1.02, "q25": 0.95, "q75": 1.08}})
    assert ratio == 1.02 and "within this run's noise" in note
    assert bench.step_verdict({"jax_over_pytorch": 0.8}) == (0.8, "")  # older JSON without pairs


def test_parts_section_times_each_variant_against_the_drivers_step(tmp_path):
    """The ablations still trace with this flax (they swap Conv/BatchNorm calls while tracing)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "parts", "--rounds", "1", "--block", "0.05",
         "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads(out.read_text())["sections"]["parts"]["records"]
    jax_rows = [r for r in records if r["compared_with"] == "the driver's step"]
    assert jax_rows[0]["variant"] == "the driver's step" and len(jax_rows) == 5
    assert all(r["ms_per_step"] > 0 for r in records)
    assert jax_rows[0]["paired_vs_unchanged"] is None and all(r["paired_vs_unchanged"] for r in jax_rows[1:])
    assert len({r["program"] for r in jax_rows}) == 5, "an ablation compiled to an unchanged program"



def test_program_fingerprints_ignore_where_the_code_came_from():
    """An ablation that changes nothing must be recognisable: same computation, same fingerprint."""
    from flax import nnx

    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step
    from tools.benchkit.profile import _batchnorm_as_affine, _call_replaced

    original = nnx.BatchNorm.__call__

    def same_maths_other_code(bn, x, use_running_average=None, *, mask=None):
        return original(bn, x, use_running_average, mask=mask)

    spec = model_spec("resnet", "tiny")
    plain = build_step(spec, 8, 4, compiler_options={}).fingerprint
    with _call_replaced(nnx.BatchNorm, same_maths_other_code):
        assert build_step(spec, 8, 4, compiler_options={}).fingerprint == plain
    with _call_replaced(nnx.BatchNorm, _batchnorm_as_affine):
        assert build_step(spec, 8, 4, compiler_options={}).fingerprint != plain


def test_budget_section_counts_entries_and_summarises_passes(tmp_path):
    """The budget section's pure parts: how soon a held photo's hand is found, medians over rounds."""
    from tools.benchkit.live_budget import entry_frames, entry_ms, summarise

    hands = [0, 0, 1, 1] + [0, 0, 0, 0] + [2, 1, 1, 1]
    assert entry_frames(hands, 4) == [2, None, 0]
    assert entry_ms(hands, 4) == pytest.approx([2 * 1000 / 30, None, 0.0])
    # wall clock: the third photo's first frame was handed over at 8/30 s but done 0.5 s in (the finder
    # fell behind): its hand came 233 ms late, not 0
    done = [0.01, 0.04, 0.08, 0.11, 0.2, 0.3, 0.4, 0.45, 0.5, 0.52, 0.55, 0.6]
    assert entry_ms(hands, 4, done) == pytest.approx([80.0, None, (0.5 - 8 / 30) * 1000])
    passes = [{"ms": [1.0, 2.0, 3.0, 40.0], "hands": hands[:4], "cpu_s": 0.04, "frames": 4, "palm_runs": 2,
               "landmark_runs": 3}, {"ms": [1.0, 1.0, 1.0, 1.0], "hands": hands[:4], "cpu_s": 0.02, "frames": 4,
                                     "palm_runs": 1, "landmark_runs": 1}]
    rec = summarise(passes, 4)
    assert rec["palm_per_frame"] == pytest.approx(0.375) and rec["rounds"] == 2
    assert rec["cpu_s_per_video_s"] == pytest.approx(np.median([0.04 / (4 / 30), 0.02 / (4 / 30)]))
    assert rec["entry_p50_ms"] == pytest.approx(2 * 1000 / 30) and rec["found_within_200ms_share"] == 1.0
    assert "budget" in subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True,
                                      check=True).stdout


def test_budget_counts_model_the_loop_and_find_entries():
    """The counts section's pure parts: a palm run started beside the loop delays the next frame only by
    what did not fit in the rest of its frame; a pasted hand counts as found where a hand's centre lies."""
    from tools.benchkit.budget_counts import GAP_MS, entries_found, modelled_loop_ms

    loop = modelled_loop_ms(np.array([12.0, 12.0, 12.0, 12.0]), np.array([22.0, 44.0, 0.0, 0.0]))
    assert loop[0] == 12.0  # nothing started before it
    assert loop[1] == pytest.approx(12.0 + 22.0 - (GAP_MS - 12.0))  # 22 ms in the 21.3 ms left: 0.7 ms late
    assert loop[2] == pytest.approx(12.0 + 44.0 - (GAP_MS - loop[1]))
    assert loop[3] == 12.0
    centres = [[]] * 5 + [[(50.0, 50.0)]] * 3 + [[(500.0, 50.0)]] * 40
    assert entries_found(centres, [(2, [0, 0, 100, 100]), (2, [400, 0, 600, 100]), (9, [0, 0, 100, 100])]) == [
        3, 6, None]


def test_finder_probe_times_a_video_with_this_checkouts_finder(tmp_path, hand_models):
    """The budget section's probe: one pass over a small video, in its own process, its figures as JSON."""
    import cv2

    video = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, str(REPO / "tools" / "benchkit" / "finder_probe.py"), "--tree", str(REPO),
                    "--video", str(video), "--json", str(out), "--warmup", "2",
                    "--config", json.dumps({"idle_palm_rate": 0.2, "search_lag": 1})], check=True,
                   env={**os.environ, "RNN_JAX_HANDS": str(hand_models)})
    got = json.loads(out.read_text())
    assert got["frames"] == 12 and len(got["ms"]) == 12 and got["hands"] == [0] * 12
    assert 1 <= got["palm_runs"] <= 12 and got["cpu_s"] > 0  # a still grey scene: a look per region at most

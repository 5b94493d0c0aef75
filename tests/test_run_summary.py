"""The console summary at the end of a run: the final student, then every student against generation 0
(and, on the built-in demo set, the one line that says where distillation does pay off)."""

from __future__ import annotations

from rnn_jax.lineage.run_report import DEMO_DATA, DEMO_NOTE, report_summary


def report(data: str, accs: list[float], final: int = 0, split: str = "test") -> dict:
    models = [{"kind": "generation", "gen": g, "name": f"gen {g}", "members": [g],
               "splits": {split: {"accuracy": a, "macro_f1": a - 0.01}}} for g, a in enumerate(accs)]
    models.append({"kind": "ensemble", "name": "ensemble 0-1", "members": [0, 1],
                   "splits": {split: {"accuracy": 0.99, "macro_f1": 0.99}}})
    return {"run_dir": "runs/x", "headline_split": split, "final_generation": final, "models": models,
            "data": {"name": data}, "model": {"params": 1234, "gflops_per_image": 0.01}}


def test_the_demo_summary_says_students_do_not_beat_generation_0_and_where_they_do() -> None:
    lines = report_summary(report(DEMO_DATA, [0.9, 0.881, 0.858], final=0)).splitlines()
    assert lines[0].startswith("report: gen 0 test acc 0.9000")
    assert lines[1] == "  students vs generation 0 (test acc, points): gen 1 -1.9, gen 2 -4.2; validation chose gen 0"
    assert lines[2] == f"  {DEMO_NOTE}"
    assert "do not beat generation 0" in DEMO_NOTE and "+0.33 points [+0.22, +0.43]" in DEMO_NOTE


def test_other_data_get_the_comparison_without_the_demo_line() -> None:
    lines = report_summary(report("fashion-mnist", [0.88, 0.8835], final=1, split="val")).splitlines()
    assert lines[1] == "  students vs generation 0 (val acc, points): gen 1 +0.3; validation chose gen 1"
    assert len(lines) == 2 and lines[0].startswith("report: gen 1 val acc 0.8835")


def test_one_generation_has_nothing_to_compare() -> None:
    assert report_summary(report(DEMO_DATA, [0.9])).count("\n") == 0

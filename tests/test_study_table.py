"""tools/study_table.py: one row per multi_seed folder, read from the per-seed lineages."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tools.study_table import format_markdown, setting_row


def _lineage(folder, accs, final, gens=None):
    folder.mkdir(parents=True)
    record = {"config": {"gens": gens or len(accs)}, "final_generation": final, "ensembles": {},
              "generations": [{"gen": i, "status": "done", "val_acc": a, "test_acc": a, "epochs": [{}]}
                              for i, a in enumerate(accs)]}
    (folder / "lineage.json").write_text(json.dumps(record))


def test_a_setting_row_pairs_seeds_and_skips_unfinished_ones(tmp_path):
    study = tmp_path / "fm-x"
    _lineage(study / "seed_0", [0.80, 0.82], 1)
    _lineage(study / "seed_1", [0.90, 0.91], 1)
    _lineage(study / "seed_2", [0.70], None, gens=2)  # still running: left out
    _lineage(study / "seed_0-label-smoothing", [0.81], 0)
    _lineage(study / "seed_1-label-smoothing", [0.90], 0)
    _lineage(study / "seed_1-compute-matched", [0.92], 0)  # one seed only: paired over that seed
    row = setting_row(study)
    assert row["final student - compute-matched"] == "-1.00"
    assert row["seeds"] == 2 and row["final gen per seed"] == "1,1"
    assert row["gen 1 - gen 0"].startswith("+1.50 [")
    assert row["final student - label-smoothing"].startswith("+1.00 [")
    table = format_markdown([row])
    assert "| fm-x | 2 | 85.00 ± 7.07 | +1.50 [" in table and "gen 1 Δ" in table


def test_the_final_student_can_be_rechosen_on_validation(tmp_path):
    study = tmp_path / "fm-y"
    _lineage(study / "seed_0", [0.80, 0.82], 0)  # recorded: generation 0
    record = json.loads((study / "seed_0" / "lineage.json").read_text())
    record["generations"][0]["val_loss"], record["generations"][1]["val_loss"] = 0.5, 0.4
    (study / "seed_0" / "lineage.json").write_text(json.dumps(record))
    assert setting_row(study)["final gen per seed"] == "0"
    assert setting_row(study, "val_loss")["final gen per seed"] == "1"


def test_bad_folders_get_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "tools/study_table.py", str(tmp_path / "nope")], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "not a folder" in result.stderr


def test_a_folder_without_finished_seeds_is_an_error(tmp_path):
    result = subprocess.run([sys.executable, "tools/study_table.py", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no finished seed" in result.stderr

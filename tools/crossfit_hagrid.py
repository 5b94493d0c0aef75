"""Choices made on one half of HaGRID val's people, figures read on the other half (cross-fitted).

    python tools/crossfit_hagrid.py --run runs/hagrid-base --hagrid ../shared/data/hagrid-sample --out runs/crossfit
    python tools/crossfit_hagrid.py --study runs/hagrid-seeds --hagrid ../shared/data/hagrid-sample

The HaGRID sample has one annotated split (val, 117 people) and no test split, so every choice the
path makes -- the final generation (the run's ``--final-by`` rule), the softmax temperature and the
export's offline threshold (``rnn_jax.calibration.choose_reject_rule``), the live threshold
(``tools/live_accuracy.py --sweep``) -- was made on the photos it was then reported on. Here val's
people are split in two by a fixed rule (SHA-256 of the ``user_id``, even: A, odd: B;
tools/live_checks/halves.py); every choice is made on one half and scored on the other, then the
halves swap. Each figure of half A comes from choices made on B and vice versa, and "both" pools
them (by hands offline, by frames live): no hand is scored by a choice it took part in.

``--run``: one run, offline and live. The generations the halves choose are exported once each
(tools/export_onnx.py), the temperature and threshold chosen on the half written into a copy
(no ``onnx`` package needed), and the val photos played through the live loop (hands found once
for every model and threshold). Beside them, for contrast, the choices made and scored on all of
val (what the export and ``--sweep --store`` do). Writes ``OUT/crossfit.json``.

``--study``: every finished seed of a tools/multi_seed.py folder, offline only: per seed the final
student chosen on each half and scored on the other, against the same seed's generation 0 on all
of val, paired over seeds (mean and 95% interval), with the headroom of the seeds' generation-0
models beside it ("gen on A/B": the generation half A was scored with, chosen on B, and B's, chosen on A).
Writes ``STUDY/crossfit.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from rnn_jax.errors import ConfigError, DataError, main_guard  # noqa: E402
from tools.live_checks.halves import HALVES, other, person_half  # noqa: E402

SWEEP = tuple(round(0.30 + 0.05 * k, 2) for k in range(13))  # what tools/live_accuracy.py --sweep tries


# --------------------------------------------------------------------------- offline
def val_halves(record: dict, root: Path, labels: np.ndarray) -> np.ndarray:
    """The half ("A"/"B") of each val row of the run, from the person ids of the HaGRID landmark set
    the run was trained with (its rows and labels must be the run's, in the same order)."""
    from rnn_jax.data.hagrid.prepare import hagrid_landmark_sets

    names = record["data"]["class_names"]
    sets = hagrid_landmark_sets(root, seed=int(record["config"].get("seed", 0)), no_gesture="no_gesture" in names,
                                progress=False)
    val = sets["val"]
    if tuple(val.class_names) != tuple(names) or not np.array_equal(np.asarray(val.labels), labels):
        raise DataError(f"the val hands of {root} are not the ones the run scored (other labels or order): "
                        "pass the --hagrid root the run was trained on")
    return np.array([person_half(p) for p in val.person_ids])


def load_val(run: Path) -> tuple[dict, np.ndarray, dict[int, np.ndarray]]:
    """The run's record, val labels and each finished generation's val logits."""
    lineage = run / "lineage.json"
    if not lineage.is_file():
        raise ConfigError(f"{run} is not a run folder (no lineage.json)")
    record = json.loads(lineage.read_text())
    labels_path = run / "labels" / "val.npy"
    if not labels_path.is_file():
        raise DataError(f"{run} stores no val labels (labels/val.npy): it has not finished")
    gens = [g["gen"] for g in record["generations"] if g.get("status") == "done"]
    logits = {g: np.load(run / f"gen_{g}" / "val_logits.npy") for g in gens
              if (run / f"gen_{g}" / "val_logits.npy").is_file()}
    if 0 not in logits:
        raise DataError(f"{run} has no finished generation 0 with stored val logits")
    return record, np.load(labels_path).astype(np.int64), logits


def offline_scores(logits: np.ndarray, labels: np.ndarray, reject: int | None, temperature: float,
                   threshold: float) -> dict:
    """Top-1 accuracy, and what the reject rule shows: gesture hands right, resting hands triggered."""
    from rnn_jax.calibration import shown_gestures
    from rnn_jax.softmax import softmax

    shown = shown_gestures(softmax(logits.astype(np.float64), temperature=temperature), threshold, reject)
    resting = labels == reject if reject is not None else np.zeros(len(labels), bool)
    return {"hands": int(len(labels)), "accuracy": float(np.mean(logits.argmax(1) == labels)),
            "gesture_right": float(np.mean(shown[~resting] == labels[~resting])) if (~resting).any() else None,
            "resting_hands": int(resting.sum()),
            "resting_triggered": float(np.mean(shown[resting] >= 0)) if resting.any() else None}


def choose(logits: dict[int, np.ndarray], labels: np.ndarray, rows: np.ndarray, reject: int | None,
           final_by: str, max_false_trigger: float) -> dict:
    """The run's choices made on ``rows`` only: final generation, temperature, offline threshold."""
    from rnn_jax.calibration import choose_reject_rule, negative_log_likelihood
    from rnn_jax.lineage.record import choose_final_generation

    done = [{"gen": g, "val_loss": negative_log_likelihood(x[rows], labels[rows]),
             "val_acc": float(np.mean(x[rows].argmax(1) == labels[rows]))} for g, x in sorted(logits.items())]
    gen = choose_final_generation(done, final_by)
    rule = choose_reject_rule(logits[gen][rows], labels[rows], reject, max_false_trigger)
    return {"gen": gen, "temperature": float(rule.temperature), "threshold": float(rule.threshold)}


def crossfit_offline(record: dict, labels: np.ndarray, logits: dict[int, np.ndarray], halves: np.ndarray,
                     max_false_trigger: float) -> dict:
    """Per half: the choices made on the other half and this half's scores under them; "both":
    every hand scored under the choices of the half it is not in; "same data": chosen and scored on all."""
    names = record["data"]["class_names"]
    reject = names.index("no_gesture") if "no_gesture" in names else None
    final_by = record["config"].get("final_by", "val_loss")
    out: dict = {}
    for half in HALVES:
        rows, chosen_rows = halves == half, halves == other(half)
        if not rows.any() or not chosen_rows.any():
            raise DataError(f"half {half} or {other(half)} of the val people has no hands")
        picked = choose(logits, labels, chosen_rows, reject, final_by, max_false_trigger)
        out[half] = {"chosen_on": other(half), **picked,
                     **offline_scores(logits[picked["gen"]][rows], labels[rows], reject, picked["temperature"],
                                      picked["threshold"]),
                     "gen0_accuracy": float(np.mean(logits[0][rows].argmax(1) == labels[rows]))}
    out["both"] = pooled_offline(out)
    everyone = np.ones(len(labels), bool)
    picked = choose(logits, labels, everyone, reject, final_by, max_false_trigger)
    out["same data"] = {"chosen_on": "all", **picked,
                        **offline_scores(logits[picked["gen"]], labels, reject, picked["temperature"],
                                         picked["threshold"]),
                        "gen0_accuracy": float(np.mean(logits[0].argmax(1) == labels))}
    return out


def pooled_offline(halves: dict) -> dict:
    """Both halves together (weighted by hands; resting figures by resting hands)."""
    parts = [halves[h] for h in HALVES]
    hands = sum(p["hands"] for p in parts)
    resting = sum(p["resting_hands"] for p in parts)

    def mean(key: str, weight: str) -> float | None:
        total = sum(p[weight] for p in parts if p[key] is not None)
        return sum(p[key] * p[weight] for p in parts if p[key] is not None) / total if total else None

    for p in parts:
        p["gesture_hands"] = p["hands"] - p["resting_hands"]
    return {"chosen_on": "other half", "hands": hands, "resting_hands": resting,
            "accuracy": mean("accuracy", "hands"), "gen0_accuracy": mean("gen0_accuracy", "hands"),
            "gesture_right": mean("gesture_right", "gesture_hands"),
            "resting_triggered": mean("resting_triggered", "resting_hands")}


# --------------------------------------------------------------------------- live
def export_generation(run: Path, gen: int, path: Path) -> None:
    """tools/export_onnx.py for one generation (the parity gate included); quiet unless it fails."""
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "export_onnx.py"), "--run", str(run),
           "--gen", str(gen), "--out", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"exporting generation {gen} of {run} failed: {done.stderr.strip().splitlines()[-1:]}")


def with_rule(source: Path, dest: Path, temperature: float, threshold: float) -> Path:
    """A copy of ``source`` holding this temperature and reject threshold."""
    from rnn_jax.runtime.metadata import PREFIX
    from tools.live_checks.onnx_props import set_props

    shutil.copyfile(source, dest)
    set_props(dest, {PREFIX + "temperature": json.dumps(round(temperature, 4)),
                     PREFIX + "reject_threshold": json.dumps(round(threshold, 4))})
    return dest


LIVE_KEYS = ("live_gesture_right", "live_gesture_wrong", "live_gesture_lost", "live_resting_triggered",
             "live_resting_lost", "gesture_frames", "resting_frames", "resting_lost", "resting_triggered")


def crossfit_live(run: Path, root: Path, out: Path, offline: dict, hand_models: Path | None,
                  max_false_trigger: float) -> dict:
    """Per half: live figures at the offline threshold chosen on the other half, and at the live
    threshold chosen on the other half's sweep; "same data": chosen and scored on all of val."""
    from rnn_jax.calibration import smallest_threshold_within
    from rnn_jax.live.settings import make_finder
    from rnn_jax.runtime.landmark_predictor import load_predictor
    from tools.live_checks.hagrid import ReplayFinder, run_hagrid

    exported: dict[int, Path] = {}
    finder = None
    live: dict = {}
    for name in (*HALVES, "same data"):
        picked = offline[name]
        if picked["gen"] not in exported:
            exported[picked["gen"]] = out / f"gen_{picked['gen']}.onnx"
            print(f"exporting generation {picked['gen']} -> {exported[picked['gen']]}", flush=True)
            export_generation(run, picked["gen"], exported[picked["gen"]])
        tag = "all" if name == "same data" else picked["chosen_on"]
        model = with_rule(exported[picked["gen"]], out / f"chosen_on_{tag}.onnx", picked["temperature"],
                          picked["threshold"])
        if finder is None:
            finder = ReplayFinder(make_finder(True, load_predictor(model), hand_models))
        print(f"live: {model.name} (generation {picked['gen']}, T {picked['temperature']:.3g}, offline threshold "
              f"{picked['threshold']:.2f}) on every val photo" + ("" if finder.frames else "; finding hands once"),
              flush=True)
        result = run_hagrid(model, root, "val", 12, 6, None, None, None, 640, hand_models, SWEEP, halves=True,
                            finder=finder)
        if name == "same data":
            rates = {row["threshold"]: row["live_resting_triggered"] for row in result["sweep"]
                     if row["live_resting_triggered"] is not None}
            scored = {k: result[k] for k in LIVE_KEYS}
            sweep_rows, scored_on = result["sweep"], None
        else:  # choices made on the other half, scored on this one
            scored = {k: result["by_half"][name][k] for k in LIVE_KEYS}
            rates = {row["threshold"]: row["by_half"][picked["chosen_on"]]["live_resting_triggered"]
                     for row in result["sweep"]
                     if row["by_half"][picked["chosen_on"]]["live_resting_triggered"] is not None}
            sweep_rows, scored_on = result["sweep"], name
        chosen = smallest_threshold_within(rates, max_false_trigger) if rates else None
        row = next((r for r in sweep_rows if r["threshold"] == chosen), None)
        at_live = None if row is None else (row if scored_on is None else row["by_half"][scored_on])
        live[name] = {"model": str(model), "at_offline_threshold": scored, "live_threshold": chosen,
                      "at_live_threshold": None if at_live is None else {k: at_live[k] for k in LIVE_KEYS[:5]}}
    live["both"] = pooled_live(live)
    return live


def pooled_live(live: dict) -> dict:
    """Both halves' cross-fitted live figures together (gesture figures by gesture frames, resting
    triggered by resting frames found, resting lost by resting frames)."""
    out = {}
    for which in ("at_offline_threshold", "at_live_threshold"):
        parts = [(live[h][which], live[h]["at_offline_threshold"]) for h in HALVES if live[h][which] is not None]
        if len(parts) < len(HALVES):
            out[which] = None
            continue
        g = sum(frames["gesture_frames"] for _, frames in parts)
        r = sum(frames["resting_frames"] for _, frames in parts)
        found = sum(frames["resting_frames"] - frames["resting_lost"] for _, frames in parts)
        pooled = {k: sum(p[k] * f["gesture_frames"] for p, f in parts) / g
                  for k in ("live_gesture_right", "live_gesture_wrong", "live_gesture_lost")}
        pooled["live_resting_triggered"] = (sum((p["live_resting_triggered"] or 0.0) * (f["resting_frames"] - f["resting_lost"])
                                                for p, f in parts) / found) if found else None
        pooled["live_resting_lost"] = (sum((p["live_resting_lost"] or 0.0) * f["resting_frames"] for p, f in parts) / r
                                       if r else None)
        out[which] = pooled
    return out


# --------------------------------------------------------------------------- study
def crossfit_study(folder: Path, root: Path, max_false_trigger: float) -> dict:
    """Every finished seed: cross-fitted final student vs generation 0 on all of val, paired."""
    from rnn_jax.lineage.headroom import seed_headroom
    from rnn_jax.lineage.seeds import paired_difference

    seeds = sorted((p for p in folder.glob("seed_*") if p.name.split("_", 1)[1].isdigit()),
                   key=lambda p: int(p.name.split("_", 1)[1]))
    rows = []
    for run in seeds:
        try:
            record, labels, logits = load_val(run)
        except DataError:
            continue  # not finished
        if len(logits) < record["config"]["gens"]:
            continue
        halves = val_halves(record, root, labels)
        fitted = crossfit_offline(record, labels, logits, halves, max_false_trigger)
        gens = sorted(logits)
        rows.append({"seed": run.name, "gen0": fitted["both"]["gen0_accuracy"],
                     "final_cross_fitted": fitted["both"]["accuracy"],
                     "final_gens": {h: fitted[h]["gen"] for h in HALVES},
                     "final_same_data": fitted["same data"]["accuracy"], "final_same_data_gen": fitted["same data"]["gen"],
                     "last_gen": float(np.mean(logits[gens[-1]].argmax(1) == labels)), "last": gens[-1]})
    if not rows:
        raise ConfigError(f"no finished seed in {folder} (each needs seed_*/lineage.json, labels and val logits)")
    gen0 = [r["gen0"] for r in rows]
    return {"folder": str(folder), "seeds": rows,
            "final_cross_fitted_vs_gen0": paired_difference([r["final_cross_fitted"] for r in rows], gen0),
            "final_same_data_vs_gen0": paired_difference([r["final_same_data"] for r in rows], gen0),
            "last_gen_vs_gen0": paired_difference([r["last_gen"] for r in rows], gen0),
            "headroom": seed_headroom([folder / r["seed"] for r in rows], "val", verify=True)}


# --------------------------------------------------------------------------- printing
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def print_run(offline: dict, live: dict | None) -> None:
    print("\noffline (annotated boxes), each half scored under the choices made on the other half:")
    print(f"{'scored on':<11}{'chosen on':<11}{'gen':>4}{'T':>7}{'thr':>6}{'hands':>7}{'top-1':>8}{'gen 0':>8}"
          f"{'gesture right':>15}{'resting shown':>15}")
    for name in (*HALVES, "both", "same data"):
        o = offline[name]
        gen = "-" if name == "both" else str(o["gen"])
        t = "-" if name == "both" else f"{o['temperature']:.3g}"
        thr = "-" if name == "both" else f"{o['threshold']:.2f}"
        print(f"{name:<11}{o['chosen_on']:<11}{gen:>4}{t:>7}{thr:>6}{o['hands']:>7}{_pct(o['accuracy']):>8}"
              f"{_pct(o['gen0_accuracy']):>8}{_pct(o['gesture_right']):>15}{_pct(o['resting_triggered']):>15}")
    if live is None:
        return
    print("\nlive (hand finder, settled frames), same choices; the live threshold is chosen on the other half's sweep:")
    print(f"{'scored on':<11}{'threshold':<22}{'right':>8}{'wrong':>8}{'lost':>8}{'resting shown':>15}"
          f"{'resting lost':>14}")
    for name in (*HALVES, "both", "same data"):
        for which, label in (("at_offline_threshold", "offline"), ("at_live_threshold", "live")):
            v = live[name][which]
            thr = ("" if name == "both" else
                   f" {offline[name]['threshold'] if which == 'at_offline_threshold' else live[name]['live_threshold']}")
            if v is None:
                print(f"{name:<11}{label + thr:<22}  (no threshold keeps the target)")
                continue
            print(f"{name:<11}{label + thr:<22}{_pct(v['live_gesture_right']):>8}{_pct(v['live_gesture_wrong']):>8}"
                  f"{_pct(v['live_gesture_lost']):>8}{_pct(v['live_resting_triggered']):>15}"
                  f"{_pct(v['live_resting_lost']):>14}")


def print_study(result: dict) -> None:
    from rnn_jax.lineage.headroom import format_headroom
    from rnn_jax.lineage.seeds import format_paired

    print(f"{'seed':<10}{'gen 0':>8}{'final (cross-fitted)':>22}{'gen on A/B':>17}{'final (same data)':>19}")
    for r in result["seeds"]:
        print(f"{r['seed']:<10}{_pct(r['gen0']):>8}{_pct(r['final_cross_fitted']):>22}"
              f"{r['final_gens']['A']:>8}/{r['final_gens']['B']:<8}{_pct(r['final_same_data']):>19}")
    rows = [{"comparison": "final (cross-fitted) - gen 0", "metric": "val_acc", **result["final_cross_fitted_vs_gen0"]},
            {"comparison": "final (same data) - gen 0", "metric": "val_acc", **result["final_same_data_vs_gen0"]},
            {"comparison": f"gen {result['seeds'][0]['last']} (fixed) - gen 0", "metric": "val_acc",
             **result["last_gen_vs_gen0"]}]
    print("\n" + format_paired(rows))
    print("\n" + format_headroom(result["headroom"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/crossfit_hagrid.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", type=Path, help="one HaGRID landmark run folder: offline and live")
    what.add_argument("--study", type=Path, help="a tools/multi_seed.py folder of HaGRID runs: offline, paired")
    parser.add_argument("--hagrid", type=Path, required=True, help="the HaGRID root the runs were trained on")
    parser.add_argument("--out", type=Path, default=None, help="--run: folder for the models and crossfit.json")
    parser.add_argument("--offline-only", action="store_true", help="--run: skip the live check")
    parser.add_argument("--hand-models", type=Path, default=None, help="folder of the hand models")
    parser.add_argument("--max-false-trigger", type=float, default=0.10,
                        help="resting hands allowed to show a gesture, offline and live (default %(default)s)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.max_false_trigger < 1.0:
        parser.error(f"--max-false-trigger must be in [0, 1), got {args.max_false_trigger}")
    if args.study is not None:
        result = crossfit_study(args.study, args.hagrid, args.max_false_trigger)
        print_study(result)
        (args.study / "crossfit.json").write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.study / 'crossfit.json'}")
        return 0
    if args.out is None and not args.offline_only:
        parser.error("--run needs --out (the exported models go there) unless --offline-only")
    record, labels, logits = load_val(args.run)
    if record["data"].get("crop_mode") != "landmarks":
        raise ConfigError(f"{args.run} is not a landmark run: the live part replays the landmark path")
    halves = val_halves(record, args.hagrid, labels)
    offline = crossfit_offline(record, labels, logits, halves, args.max_false_trigger)
    live = None
    if not args.offline_only:
        args.out.mkdir(parents=True, exist_ok=True)
        live = crossfit_live(args.run, args.hagrid, args.out, offline, args.hand_models, args.max_false_trigger)
    print(f"{args.run}: val hands per half " + ", ".join(f"{h} {int((halves == h).sum())}" for h in HALVES))
    print_run(offline, live)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        from rnn_jax.atomic import write_json_atomic

        write_json_atomic(args.out / "crossfit.json", {"run": str(args.run), "offline": offline, "live": live,
                                                       "max_false_trigger": args.max_false_trigger},
                          indent=2)
        print(f"\nwrote {args.out / 'crossfit.json'}")
    return 0


if __name__ == "__main__":
    main_guard(main)

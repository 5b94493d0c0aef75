"""Export a trained student to ONNX for the webcam program (and measure it).

By default: the newest run under ./runs (by lineage.json time), its final student, written
to student.onnx. The file is published only if the exported graph matches the JAX model
on the run's own validation images (max |Δlogit| <= --tolerance and 100% top-1 agreement);
otherwise nothing is written and the exit status is 2. A report (parameters, GFLOPs, size,
batch-1 latency, parity, int8 numbers) is printed and saved as <out>.json.

    python tools/export_onnx.py
    python tools/export_onnx.py --run runs/fashion_mnist-20261122-120000 --int8
    python tools/export_onnx.py --run runs/demo --gen 2 --out models/gen2.onnx
    python -m rnn_jax.live --onnx student.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax.calibration import DEFAULT_MAX_FALSE_TRIGGER  # noqa: E402
from rnn_jax.errors import ResumeError, main_guard  # noqa: E402


def newest_run(root: Path = Path("runs")) -> Path:
    """The run folder under ``root`` whose lineage.json was written last."""
    candidates = sorted(root.glob("*/lineage.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not candidates:
        raise ResumeError(f"no runs found under {root}/ (no {root}/*/lineage.json); train one first, e.g. "
                          "`python -m experiments.fashion_mnist`, or pass --run DIR")
    return candidates[-1].parent


def _is_landmark_run(run: Path) -> bool:
    import json

    try:
        return json.loads((run / "lineage.json").read_text())["data"].get("crop_mode") == "landmarks"
    except (OSError, ValueError, KeyError):
        return False  # export_run reports the problem


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/export_onnx.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None,
                        help="run folder holding lineage.json (default: the newest under ./runs)")
    parser.add_argument("--gen", type=int, default=None,
                        help="generation to export (default: the run's final student, its best on val)")
    parser.add_argument("--out", default="student.onnx",
                        help="ONNX file to write (default student.onnx); the report goes to <out>.json")
    parser.add_argument("--int8", action="store_true",
                        help="also write a static-QDQ int8 copy beside it (<name>.int8.onnx) and report "
                             "its accuracy change and speed-up")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |logit difference| JAX vs onnxruntime the gate accepts (default 1e-4)")
    parser.add_argument("--parity-images", type=int, default=256,
                        help="validation images for the parity gate (default 256)")
    parser.add_argument("--data", default=None, help="override the data path stored in the run")
    parser.add_argument("--max-false-trigger", type=float, default=None, metavar="RATE",
                        help="live reject rule: the threshold stored in the model is the smallest whose share of "
                             "validation resting (no_gesture) hands shown as a gesture is <= RATE (default "
                             f"{DEFAULT_MAX_FALSE_TRIGGER:g}: rnn_jax.calibration); "
                             "the softmax temperature is fitted on validation too")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    args = parser.parse_args(argv)

    run = Path(args.run) if args.run else newest_run()
    if _is_landmark_run(run):  # state as explicit inputs/outputs; parity over a whole sequence
        from rnn_jax.export.landmark_export import export_landmark_run

        report = export_landmark_run(run, gen=args.gen, out=args.out, tolerance=args.tolerance,
                                     data_path=args.data, max_false_trigger=args.max_false_trigger)
        print()
        for key, value in report.items():
            print(f"  {key:28} {value}")
        print(f"\nreport: {report['onnx']}.json")
        print(f"next:   python -m rnn_jax.live --onnx {report['onnx']}")
        return
    from rnn_jax.export import export_run  # JAX + jax2onnx: only after the arguments are valid

    report = export_run(run, gen=args.gen, out=args.out, int8=args.int8, parity_images=args.parity_images,
                        tolerance=args.tolerance, data_path=args.data, max_false_trigger=args.max_false_trigger)
    print()
    print(report.table())
    print(f"\nreport: {report.json_path}")
    print(f"next:   python -m rnn_jax.live --onnx {report.onnx_path}")


if __name__ == "__main__":
    main_guard(main)

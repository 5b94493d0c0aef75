"""Build the hand models once: MediaPipe 0.10.14's TFLite palm/landmark/face models -> ONNX files.

    python tools/build_hand_models.py                 # -> $RNN_JAX_HANDS or ~/.cache/rnn-jax/hands
    python tools/build_hand_models.py --out DIR --wheel mediapipe-0.10.14-...whl

Why a build step: the models ship only inside the mediapipe wheel (Apache-2.0) as TFLite
files, and the live path runs onnxruntime only. The wheel is fetched with
``pip download --no-deps`` (never installed), the five .tflite files are checked against
known SHA-256 sums, converted with tflite2onnx (the palm models need their 3-D PReLU
slopes given a leading axis first), compared with the TFLite originals when a TFLite
interpreter (ai-edge-litert) is installed, and written with the licence and a notice of
the format change. The converter comes from ``pip install -e ".[hands-build]"``; on a base
install without it, the tool pip-installs it into a temporary folder for this one run
(``--no-install`` refuses instead), so the webcam machine stays JAX- and TensorFlow-free.
Exit status: 0 ok (or already built), 2 on any failure (one line).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from rnn_jax.atomic import publish  # noqa: E402
from rnn_jax.errors import RnnJaxError, main_guard  # noqa: E402
from rnn_jax.hands.models import default_model_dir  # noqa: E402

MEDIAPIPE = "mediapipe==0.10.14"
# The wheel for one fixed platform, so every machine converts byte-identical TFLite files.
WHEEL_PLATFORM = ("--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                  "--only-binary=:all:", "--implementation", "cp")
SOURCES = {  # path inside the wheel -> SHA-256 of the file as shipped in mediapipe 0.10.14
    "mediapipe/modules/palm_detection/palm_detection_full.tflite":
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
    "mediapipe/modules/palm_detection/palm_detection_lite.tflite":
        "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite":
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
    "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite":
        "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
    # the finder's face check: a hand only a tile saw must not be a detail of a face
    "mediapipe/modules/face_detection/face_detection_short_range.tflite":
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
}
LICENSE_IN_WHEEL = "mediapipe-0.10.14.dist-info/LICENSE"
BUILD_TOOLS = ("tflite2onnx==0.4.1", "tflite==2.18.0", "onnx", "ai-edge-litert==2.3.0")  # the [hands-build] extra
TOLERANCE = 1e-3  # max |ONNX - TFLite| relative to max(1, max |TFLite|) on the check inputs
log = logging.getLogger("build_hand_models")


class BuildError(RnnJaxError):
    """A step of the build failed; the message says which and what to do."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` the mediapipe wheel into ``dest`` (nothing is installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest),
           *WHEEL_PLATFORM, MEDIAPIPE]
    log.info("fetching %s (download only, not installed)", MEDIAPIPE)
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("mediapipe-0.10.14-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"could not download {MEDIAPIPE} with pip ({last}); pass a local wheel "
                         "with --wheel")
    return wheels[0]


def extract(wheel: Path, dest: Path) -> dict[str, Path]:
    """Pull the .tflite files and the licence out of the wheel; check their SHA-256."""
    out: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in (*SOURCES, LICENSE_IN_WHEEL):
                target = dest / Path(member).name
                target.write_bytes(zf.read(member))
                out[member] = target
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BuildError(f"{wheel} is not a mediapipe 0.10.14 wheel with the hand models ({exc})") from None
    for member, want in SOURCES.items():
        got = _sha256(out[member])
        if got != want:
            raise BuildError(f"{member} in {wheel} has SHA-256 {got[:12]}..., expected {want[:12]}...; "
                             "use the wheel from PyPI")
    return out


@contextlib.contextmanager
def _prelu_patch():
    """Give 3-D PReLU slopes behind an fp16 Dequantize a leading axis (tflite2onnx 0.4.1).

    tflite2onnx adds the batch axis to a PReLU's slope tensor so the NHWC->NCHW layout
    change can be applied to it, but when the slope comes out of a float16 Dequantize
    (the palm models), the Dequantize's own input stays 3-D and the layout pass fails
    with an IndexError. Reshaping that input to 4-D as well fixes it; values are unchanged.
    """
    from tflite2onnx.graph import Graph

    original = Graph._propagateLayout

    def patched(self):  # noqa: ANN001
        for op in self.ops:
            if op.type != "PRelu":
                continue
            alpha = op.inputs[1]
            for producer in alpha.producers:
                source = producer.inputs[0] if producer.type == "DequantizeLinear" else None
                if source is not None and len(source.shape) == len(alpha.shape) - 1:
                    source.shape.insert(0, 1)
        return original(self)

    Graph._propagateLayout = patched
    try:
        yield
    finally:
        Graph._propagateLayout = original


def ensure_build_tools(work: Path, allow_install: bool) -> None:
    """Make tflite2onnx importable: installed already, or pip-installed into ``work`` for this run."""
    import importlib.util

    if importlib.util.find_spec("tflite2onnx") is not None:
        return
    if not allow_install:
        raise BuildError('tflite2onnx is not installed; run `pip install -e ".[hands-build]"`')
    target = work / "tools"
    log.info("installing the converter for this run only (%s) into a temporary folder", ", ".join(BUILD_TOOLS))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
                           *BUILD_TOOLS], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"could not install the converter ({last}); run "
                         '`pip install -e ".[hands-build]"`')
    sys.path.insert(0, str(target))


def convert(tflite_path: Path, onnx_path: Path) -> None:
    """TFLite -> ONNX with tflite2onnx (input becomes NCHW float32 in [0, 1] or [-1, 1] as before)."""
    try:
        import tflite2onnx
    except ImportError:
        raise BuildError('tflite2onnx is not installed; run `pip install -e ".[hands-build]"`') from None
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)  # it warns about every fp16 tensor
    with _prelu_patch(), contextlib.redirect_stdout(sys.stderr):
        try:
            tflite2onnx.convert(str(tflite_path), str(onnx_path))
        except Exception as exc:  # tflite2onnx raises plain asserts and IndexErrors
            raise BuildError(f"converting {tflite_path.name} failed: {type(exc).__name__}: {exc}") from None


def _check_inputs(size: int) -> np.ndarray:
    """Deterministic inputs in [0, 1]: smooth gradients plus noise (NHWC, 3 images)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    a = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1] * ramp[:, None]), -1)
    b = rng.random((size, size, 3), dtype=np.float32)
    c = np.clip(a * 0.7 + b * 0.3, 0, 1)
    return np.stack([a, b, c]).astype(np.float32)


def verify(tflite_path: Path, onnx_path: Path) -> dict:
    """Run both files on the same inputs; returns the worst difference, or a sanity check only."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    size = session.get_inputs()[0].shape[2]
    images = _check_inputs(size)
    onnx_out = [session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})
                for x in images]
    if not all(np.all(np.isfinite(o)) for outs in onnx_out for o in outs):
        raise BuildError(f"{onnx_path.name} gives non-finite outputs")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return {"compared_with_tflite": False,
                "note": "ai-edge-litert not installed: outputs checked finite only"}
    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    worst = 0.0
    for x, outs in zip(images, onnx_out):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
        interpreter.invoke()
        ref = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        for r, o in zip(ref, outs, strict=True):
            worst = max(worst, float(np.max(np.abs(r - o)) / max(1.0, float(np.max(np.abs(r))))))
    if worst > TOLERANCE:
        raise BuildError(f"{onnx_path.name} differs from the TFLite original by {worst:.2e} "
                         f"(relative; tolerance {TOLERANCE:.0e}): not written")
    return {"compared_with_tflite": True, "max_relative_difference": worst}


NOTICE = """\
Hand (and face) models converted from MediaPipe {version} (Google LLC), Apache License 2.0 (LICENSE here).

Files and their origin (path inside the {version} wheel on PyPI, SHA-256 of the original):
{files}

Format change (made by rnn-jax tools/build_hand_models.py on {date}): each TFLite model was
converted to ONNX with tflite2onnx {t2o}. The input is NCHW instead of NHWC; float16 weights
are stored as float32; the palm models' 3-D PReLU slope tensors were reshaped to 4-D (same
values) so the converter could transpose them. No weights were retrained or altered.
{verification}
"""


def build(out_dir: Path, wheel: Path | None = None, force: bool = False, allow_install: bool = True) -> dict:
    """Build the ONNX files into ``out_dir`` (atomic per folder; a folder built before a model was
    added is rebuilt); returns the manifest."""
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file() and not force:
        with contextlib.suppress(ValueError, OSError):
            manifest = json.loads(manifest_path.read_text())
            if ({f["source"] for f in manifest["files"]} == set(SOURCES)
                    and all((out_dir / f["onnx"]).is_file() and _sha256(out_dir / f["onnx"]) == f["onnx_sha256"]
                            for f in manifest["files"])):
                log.info("hand models already built in %s (use --force to rebuild)", out_dir)
                return manifest
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".hands-build-", dir=out_dir.parent))
    except OSError as exc:
        raise BuildError(f"cannot write to {out_dir.parent}: {exc.strerror or exc}") from None
    try:
        ensure_build_tools(work, allow_install)
        wheel = wheel if wheel is not None else fetch_wheel(work)
        if not wheel.is_file():
            raise BuildError(f"wheel {wheel} not found")
        files = extract(wheel, work)
        stage = work / "out"
        stage.mkdir()
        entries = []
        for member, sha in SOURCES.items():
            tflite_path = files[member]
            onnx_name = tflite_path.with_suffix(".onnx").name
            log.info("converting %s", tflite_path.name)
            convert(tflite_path, stage / onnx_name)
            check = verify(tflite_path, stage / onnx_name)
            entries.append({"onnx": onnx_name, "source": member, "source_sha256": sha,
                            "onnx_sha256": _sha256(stage / onnx_name), **check})
        shutil.copyfile(files[LICENSE_IN_WHEEL], stage / "LICENSE")
        import tflite2onnx

        compared = all(e["compared_with_tflite"] for e in entries)
        verification = ("Checked: onnxruntime outputs match the TFLite interpreter (ai-edge-litert) within "
                        f"{max(e.get('max_relative_difference', 0) for e in entries):.1e} relative on test inputs."
                        if compared else "Not compared with TFLite here (no interpreter installed).")
        (stage / "NOTICE.md").write_text(NOTICE.format(
            version=MEDIAPIPE, files="\n".join(f"- {e['onnx']} <- {e['source']} ({e['source_sha256']})"
                                               for e in entries),
            date=datetime.date.today().isoformat(), t2o=getattr(tflite2onnx, "__version__", "?"),
            verification=verification))
        manifest = {"mediapipe": MEDIAPIPE, "files": entries}
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.iterdir(), key=lambda p: p.name == "manifest.json"):
            publish(item, out_dir / item.name, keep_mode=True)  # manifest last: it vouches for the rest
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/build_hand_models.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for the models (default: $RNN_JAX_HANDS or {default_model_dir()})")
    parser.add_argument("--wheel", type=Path, default=None,
                        help="a local mediapipe-0.10.14 wheel instead of downloading one")
    parser.add_argument("--force", action="store_true", help="rebuild even if the models are there")
    parser.add_argument("--no-install", action="store_true",
                        help="fail instead of pip-installing the converter into a temporary folder "
                             "when it is missing")
    parser.add_argument("--quiet", action="store_true", help="print only the result line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    out_dir = (args.out or default_model_dir()).expanduser()
    manifest = build(out_dir, args.wheel, args.force, allow_install=not args.no_install)  # errors: main_guard
    compared = all(f["compared_with_tflite"] for f in manifest["files"])
    print(f"hand models ready in {out_dir} ({len(manifest['files'])} files; "
          + ("match TFLite)" if compared else "not compared with TFLite: pip install ai-edge-litert)"))
    return 0


if __name__ == "__main__":
    main_guard(main)

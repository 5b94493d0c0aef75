"""One-command check of the GPU path: the [cuda12] install, JAX on the GPU, the gpu preset.

    python3 tools/gpu_check.py                 # on the NVIDIA machine, from the checkout
    python3 tools/gpu_check.py --steps 600 --venv ~/gpu-venv --keep-venv

On a machine with an NVIDIA GPU it
  1. creates a fresh venv and installs this checkout with `pip install -e ".[cuda12]"`,
  2. checks that JAX sees the GPU (jax.devices()),
  3. trains the gpu preset (resnet18, 224 px, batch 128; rnn_jax/presets.py) on the built-in
     demo data for about --steps optimizer steps over 2 generations (the second distils
     from the first), with `python -m experiments.hagrid`,
  4. exports the final student with tools/export_onnx.py (its parity gate must pass),
  5. prints images/s, peak GPU memory (nvidia-smi, polled, XLA preallocation off so the
     figure is what the run used) and the run's table; the last line is PASS or FAILED.
On a machine without one it says so in one line and exits 0 without installing anything.
Needs only the Python that runs it (>= 3.10) and network access for pip.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENS = 2
# the gpu preset (rnn_jax/presets.py), spelled out: experiments.hagrid uses the demo preset
# for the built-in data, and explicit flags win over any preset
GPU_FLAGS = ["--model", "resnet18", "--size", "default", "--image-size", "224", "--batch-size", "128",
             "--lr", "2e-3"]
BATCH = 128


class CheckFailed(Exception):
    """A step of the check failed; the message says which and why."""


def find_gpus(nvidia_smi: str | None = None) -> tuple[list[str], str]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists, and, when there are none, why."""
    tool = nvidia_smi or shutil.which("nvidia-smi")
    if tool is None:
        return [], "no nvidia-smi on PATH"
    try:
        proc = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi does not run: {exc}"
    if proc.returncode != 0:
        why = (proc.stdout + proc.stderr).strip().splitlines()
        return [], f"nvidia-smi failed: {why[0] if why else f'exit {proc.returncode}'}"
    gpus = parse_gpu_list(proc.stdout)
    return gpus, "" if gpus else "nvidia-smi lists none"


def parse_gpu_list(text: str) -> list[str]:
    """``GPU 0: NVIDIA GeForce RTX 3060 (UUID: ...)`` lines -> ["NVIDIA GeForce RTX 3060"]."""
    names = []
    for line in text.splitlines():
        if line.startswith("GPU ") and ":" in line:
            names.append(line.split(":", 1)[1].split("(UUID")[0].strip())
    return names


def epochs_for(steps: int, n_train: int, batch: int = BATCH, gens: int = GENS) -> int:
    """Epochs per generation so that all generations together take about ``steps`` steps."""
    per_epoch = max(1, n_train // batch)
    return max(1, math.ceil(steps / (gens * per_epoch)))


def throughput(rows: list[dict]) -> tuple[float, float]:
    """(median, max) training images/s over the epochs, leaving out each generation's first
    epoch (it includes the compilation) when a generation has more than one."""
    by_gen: dict[int, list[dict]] = {}
    for row in rows:
        if "images_per_s" in row:
            by_gen.setdefault(row.get("gen", 0), []).append(row)
    kept = [r["images_per_s"] for g in by_gen.values() for r in (g[1:] if len(g) > 1 else g)]
    if not kept:
        raise CheckFailed("the run wrote no per-epoch images/s to metrics.jsonl")
    return statistics.median(kept), max(kept)


class MemoryPoller:
    """Polls ``nvidia-smi`` for the memory used on every GPU; keeps the peak (MiB)."""

    QUERY = ["--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"]

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.peak_mib = 0
        self.total_mib = 0
        self.baseline_mib = self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        try:
            out = subprocess.run(["nvidia-smi", *self.QUERY], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return 0
        used = []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                used.append(int(parts[0]))
                self.total_mib = max(self.total_mib, int(parts[1]))
        return max(used, default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemoryPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def step(title: str) -> None:
    print(f"\n== gpu_check: {title}", flush=True)


def run(cmd: list[str], what: str, env: dict[str, str] | None = None, echo_cmd: bool = True) -> str:
    """Run ``cmd`` in the checkout, echoing its output as it comes; returns the output."""
    if echo_cmd:
        print("$ " + " ".join(cmd), flush=True)
    lines = []
    try:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
    except OSError as exc:
        raise CheckFailed(f"{what}: cannot run {cmd[0]} ({exc.strerror or exc})") from None
    with proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if proc.returncode != 0:
        raise CheckFailed(f"{what} failed (exit {proc.returncode}); its output is above")
    return "".join(lines)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def check(args: argparse.Namespace, gpus: list[str]) -> None:
    """Steps 1-5 (the GPU is known to be there)."""
    venv = Path(args.venv).expanduser() if args.venv else Path(tempfile.mkdtemp(prefix="rnn-jax-gpu-check-"))
    python = str(venv_python(venv))
    try:
        step(f"1/5 fresh venv in {venv}, pip install -e \".[cuda12]\"")
        if not venv_python(venv).exists():
            run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
        run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip")
        run([python, "-m", "pip", "install", "-e", ".[cuda12]"], "pip install -e .[cuda12]")

        step("2/5 does JAX see the GPU?")
        out = run([python, "-c", "import jax; print('backend', jax.default_backend()); print(jax.devices())"],
                  "importing JAX")
        if "backend gpu" not in out:
            raise CheckFailed("JAX does not see the GPU (see jax.devices() above); "
                              "check the NVIDIA driver (>= 525 for CUDA 12) and that nothing hides the GPU")

        n_train = int(run([python, "-c", "from rnn_jax.data.builtin import make_builtin_gestures as m; "
                                         "print(len(m(image_size=8).train))"], "sizing the built-in data")
                      .split()[-1])
        epochs = epochs_for(args.steps, n_train)
        out_dir = Path(args.out) if args.out else REPO / "runs" / f"gpu-check-{time.strftime('%Y%m%d-%H%M%S')}"
        step(f"3/5 train the gpu preset on the built-in data: {GENS} generations x {epochs} epochs "
             f"(~{GENS * epochs * (n_train // BATCH)} steps of {BATCH})")
        env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # so the peak is what the run used
        started = time.perf_counter()
        with MemoryPoller() as memory:
            run([python, "-m", "experiments.hagrid", *GPU_FLAGS, "--gens", str(GENS),
                             "--epochs", str(epochs), "--out", str(out_dir), "--no-progress"],
                            "training", env=env)
        train_s = time.perf_counter() - started

        step("4/5 export the final student (parity gate)")
        onnx = out_dir / "student.onnx"
        run([python, "tools/export_onnx.py", "--run", str(out_dir), "--out", str(onnx)], "export / parity gate")

        step("5/5 results")
        rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        median, best = throughput(rows)
        print("the run's table:")
        run([python, "-c", "import sys; from rnn_jax.lineage.record import read_lineage; "
                           "from rnn_jax.lineage.report import generation_table; "
                           "print(generation_table(read_lineage(sys.argv[1])))", str(out_dir)],
            "printing the run's table", echo_cmd=False)
        print(f"GPU:              {', '.join(gpus)}")
        print(f"training:         {train_s:.0f} s for {GENS} generations x {epochs} epochs, run {out_dir}")
        print(f"images/s:         median {median:.0f}, best {best:.0f} (training steps, batch {BATCH}, 224 px; "
              f"each generation's first epoch left out: it compiles)")
        print(f"peak GPU memory:  {memory.peak_mib} MiB of {memory.total_mib} MiB "
              f"(nvidia-smi, {memory.baseline_mib} MiB in use before; XLA preallocation off)")
        print(f"export:           {onnx} (parity gate passed)")
    finally:
        if args.venv or args.keep_venv:
            print(f"venv kept: {venv}")
        else:
            shutil.rmtree(venv, ignore_errors=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 tools/gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=_positive_int, default=300,
                        help="optimizer steps to train, all generations together (default 300)")
    parser.add_argument("--venv", default=None, metavar="DIR",
                        help="venv folder (created if missing, kept afterwards; default: a fresh temporary "
                             "one, removed at the end)")
    parser.add_argument("--keep-venv", action="store_true", help="keep the temporary venv and say where it is")
    parser.add_argument("--out", default=None, metavar="RUN",
                        help="run folder (default runs/gpu-check-<time>)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    gpus, why = find_gpus()
    if not gpus:
        print(f"gpu_check: no NVIDIA GPU on this machine ({why}): nothing to check, nothing installed")
        return 0
    try:
        check(args, gpus)
    except CheckFailed as exc:
        print(f"gpu_check: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ngpu_check: interrupted", file=sys.stderr)
        return 130
    print("gpu_check: PASS")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # rnn_jax.errors needs nothing beyond the standard library
    from rnn_jax.errors import main_guard

    main_guard(main)

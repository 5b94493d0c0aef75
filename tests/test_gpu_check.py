"""tools/gpu_check.py: the no-GPU verdict, GPU detection, and the check's steps with stand-ins
(the real check installs jax[cuda12] and trains on an NVIDIA GPU; it cannot run here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def _run_script(tmp_path: Path, fake_smi: str | None) -> subprocess.CompletedProcess:
    """The script with a PATH holding only a stand-in nvidia-smi (or none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if fake_smi is not None:
        tool = bin_dir / "nvidia-smi"
        tool.write_text("#!/bin/sh\n" + fake_smi + "\n")
        tool.chmod(0o755)
    return subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, cwd=tmp_path)


@pytest.mark.parametrize(("fake_smi", "why"), [
    (None, "no nvidia-smi on PATH"),
    ("echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9",
     "nvidia-smi failed: NVIDIA-SMI has failed"),
    ("echo 'No devices were found'; exit 6", "nvidia-smi failed: No devices were found"),
    ("exit 0", "nvidia-smi lists none"),
])
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path, fake_smi, why):
    proc = _run_script(tmp_path, fake_smi)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""
    assert proc.stdout.startswith("gpu_check: no NVIDIA GPU on this machine") and why in proc.stdout
    assert not (tmp_path / "runs").exists()


def test_help_and_bad_steps():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "cuda12" in out and "--steps" in out and "no NVIDIA GPU" not in out
    bad = subprocess.run([sys.executable, str(SCRIPT), "--steps", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--steps" in bad.stderr and "Traceback" not in bad.stderr


def test_gpu_list_parsing():
    text = ("GPU 0: NVIDIA GeForce RTX 3060 (UUID: GPU-0a1b)\n"
            "GPU 1: NVIDIA H200 (UUID: GPU-2c3d)\n")
    assert gpu_check.parse_gpu_list(text) == ["NVIDIA GeForce RTX 3060", "NVIDIA H200"]
    assert gpu_check.parse_gpu_list("No devices were found\n") == []


def test_the_flags_train_the_gpu_preset():
    """The check spells the gpu preset out (the built-in data would pick the demo preset)."""
    from experiments.hagrid import build_parser
    from rnn_jax.presets import PRESETS

    args = build_parser().parse_args(gpu_check.GPU_FLAGS)
    gpu = PRESETS["gpu"]
    assert (args.model, args.size, args.image_size, args.batch_size, args.lr) == \
        (gpu.model, gpu.size, gpu.image_size, gpu.batch_size, gpu.lr)
    assert gpu_check.BATCH == gpu.batch_size


def test_steps_and_throughput():
    assert gpu_check.epochs_for(300, n_train=2450) == 8  # 19 steps per epoch, 2 generations
    assert gpu_check.epochs_for(1, n_train=50) == 1
    rows = [{"gen": 0, "epoch": 0, "images_per_s": 10.0}, {"gen": 0, "epoch": 1, "images_per_s": 100.0},
            {"gen": 1, "epoch": 0, "images_per_s": 20.0}, {"gen": 1, "epoch": 1, "images_per_s": 120.0},
            {"gen": 1, "epoch": 2, "images_per_s": 110.0}]
    assert gpu_check.throughput(rows) == (110.0, 120.0)  # first epochs (compilation) left out


def test_the_steps_run_in_order_and_report(tmp_path, monkeypatch, capsys):
    """The whole check with stand-ins for the commands and nvidia-smi."""
    calls = []

    def fake_run(cmd, what, env=None, echo_cmd=True):
        calls.append(what)
        if what == "importing JAX":
            return "backend gpu\n[CudaDevice(id=0)]\n"
        if what == "sizing the built-in data":
            return "2450\n"
        if what == "training":
            out = Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True)
            rows = [{"gen": g, "epoch": e, "images_per_s": 500.0 + e} for g in range(2) for e in range(3)]
            (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        return "gen table\n"

    class FakePoller:
        peak_mib, total_mib, baseline_mib = 5000, 12288, 300

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(gpu_check, "run", fake_run)
    monkeypatch.setattr(gpu_check, "MemoryPoller", FakePoller)
    args = gpu_check.build_parser().parse_args(["--venv", str(tmp_path / "venv"), "--out", str(tmp_path / "run")])
    gpu_check.check(args, ["NVIDIA GeForce RTX 3060"])
    assert calls == ["creating the venv", "upgrading pip", "pip install -e .[cuda12]", "importing JAX",
                     "sizing the built-in data", "training", "export / parity gate", "printing the run's table"]
    out = capsys.readouterr().out
    assert "images/s:         median 502, best 502" in out
    assert "peak GPU memory:  5000 MiB of 12288 MiB" in out


def test_a_cpu_only_jax_is_a_failed_check(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "run", lambda cmd, what, env=None, echo_cmd=True:
                        "backend cpu\n[CpuDevice(id=0)]\n" if what == "importing JAX" else "")
    args = gpu_check.build_parser().parse_args(["--venv", str(tmp_path / "venv")])
    with pytest.raises(gpu_check.CheckFailed, match="JAX does not see the GPU"):
        gpu_check.check(args, ["NVIDIA GeForce RTX 3060"])

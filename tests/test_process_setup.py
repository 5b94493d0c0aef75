"""The process-wide settings a training run applies (rnn_jax/process_setup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_jax.errors import ConfigError
from rnn_jax.process_setup import MALLOC_ENV, tune_host_allocator

REPO = Path(__file__).resolve().parents[1]


def test_allocator_opt_out_and_bad_value(monkeypatch):
    monkeypatch.setenv(MALLOC_ENV, "default")
    assert tune_host_allocator().startswith("default")
    monkeypatch.setenv(MALLOC_ENV, "fast please")
    with pytest.raises(ConfigError, match="use 'tuned'"):
        tune_host_allocator()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt thresholds are glibc's")
def test_allocator_tuned_on_glibc(monkeypatch):
    monkeypatch.delenv(MALLOC_ENV, raising=False)
    assert tune_host_allocator() == "tuned"


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**clean, **env}, timeout=120)


def test_compilation_cache_fills_the_directory(tmp_path):
    """Fresh process: the cache goes where RNN_JAX_XLA_CACHE says and receives compiled programs."""
    code = ("import jax, jax.numpy as jnp\n"
            "from rnn_jax.process_setup import enable_compilation_cache\n"
            "print(enable_compilation_cache())\n"
            "jax.jit(lambda x: x * 2 + 1)(jnp.ones(3)).block_until_ready()\n")
    proc = _run(code, {"RNN_JAX_XLA_CACHE": str(tmp_path / "xla")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "xla")
    assert any((tmp_path / "xla").iterdir()), "no compiled program was written to the cache"


def test_compilation_cache_off_leaves_jax_alone(tmp_path):
    code = ("import jax\n"
            "from rnn_jax.process_setup import enable_compilation_cache\n"
            "print(enable_compilation_cache())\n"
            "print(repr(jax.config.jax_compilation_cache_dir))\n")
    proc = _run(code, {"RNN_JAX_XLA_CACHE": "off", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    said, configured = proc.stdout.strip().splitlines()[-2:]
    assert said.startswith("off") and configured == "None"
    assert not (tmp_path / ".cache" / "rnn-jax" / "xla").exists()


def test_compilation_cache_unwritable_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = ("from rnn_jax.process_setup import enable_compilation_cache\n"
            "from rnn_jax.errors import ConfigError\n"
            "try:\n    enable_compilation_cache()\nexcept ConfigError as e:\n    print('ERR', e)\n")
    proc = _run(code, {"RNN_JAX_XLA_CACHE": str(blocker / "xla")})
    assert proc.returncode == 0, proc.stderr
    assert "ERR cannot create the compilation cache" in proc.stdout
    assert "RNN_JAX_XLA_CACHE" in proc.stdout

"""Process-wide settings a training run applies once: host allocator and compilation cache.

Both were measured with ``python tools/bench.py --only allocator,startup`` (docs/performance.md):

* **Host allocator.** XLA:CPU allocates a train step's temporaries with ``malloc`` and frees
  them when the step ends. With glibc's defaults those blocks go back to the kernel and the
  next step faults every page in again: the cpu preset step spent a third of its wall time
  in the kernel (~8,500 page faults per step). Higher mmap/trim thresholds keep the memory
  in the process. A no-op where the C library is not glibc.
* **Persistent compilation cache.** Creating a ResNet compiles ~50 small initializer
  programs and the train step: ~7 s per process on 2 cores, ~1 s when they come from disk.

They change process-wide state, so the driver applies them explicitly and each can be
switched off: ``RNN_JAX_HOST_MALLOC=default``, ``RNN_JAX_XLA_CACHE=off`` (or a directory).
JAX's own ``JAX_COMPILATION_CACHE_DIR`` wins when set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from rnn_jax.errors import ConfigError

MALLOC_ENV = "RNN_JAX_HOST_MALLOC"
XLA_CACHE_ENV = "RNN_JAX_XLA_CACHE"
# mallopt(3) parameter numbers (glibc <malloc.h>)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# blocks below 256 MiB come from the heap (reused, not re-faulted); up to 1 GiB of freed heap
# is kept; the heap grows in 64 MiB steps
MALLOC_SETTINGS = ((_M_MMAP_THRESHOLD, 256 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_host_allocator() -> str:
    """Apply :data:`MALLOC_SETTINGS` unless ``$RNN_JAX_HOST_MALLOC`` is ``default``; say what holds."""
    raw = os.environ.get(MALLOC_ENV, "")
    choice = raw.strip().lower() or "tuned"
    if choice not in ("tuned", "default"):
        raise ConfigError(f"{MALLOC_ENV}={raw!r}: use 'tuned' (the default) or 'default'")
    if choice == "default":
        return f"default ({MALLOC_ENV}=default)"
    libc = _glibc()
    if libc is None:
        return "default (not glibc)"
    if not all(libc.mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS):
        return "default (mallopt refused)"
    return "tuned"


def default_xla_cache_dir() -> Path:
    return Path.home() / ".cache" / "rnn-jax" / "xla"


def enable_compilation_cache() -> str:
    """Point JAX's persistent compilation cache at ``$RNN_JAX_XLA_CACHE`` (default
    ``~/.cache/rnn-jax/xla``) and cache every program, however quick to compile; say where."""
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return f"{jax.config.jax_compilation_cache_dir} (set by the caller)"
    raw = os.environ.get(XLA_CACHE_ENV, "").strip()
    if raw.lower() in ("off", "0", "none"):
        return f"off ({XLA_CACHE_ENV}={raw})"
    where = Path(raw).expanduser() if raw else default_xla_cache_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the compilation cache {where} ({exc.strerror}); "
                          f"set {XLA_CACHE_ENV} to a writable directory or to 'off'") from None
    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(where)


def setup_training_process() -> dict[str, str]:
    """Both settings, for the lineage record."""
    return {"host_malloc": tune_host_allocator(), "xla_cache": enable_compilation_cache()}

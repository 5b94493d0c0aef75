"""Build and load the oneDNN convolution kernel (``onednn_conv.cc``) for XLA:CPU.

Why compile here instead of shipping a binary: the kernel must match the installed jaxlib's FFI
headers and oneDNN, and a C++ compiler is on nearly every Linux training machine. The first use
compiles it (~5 s) into a per-user cache keyed by everything it depends on; later processes just
load it. Where anything is missing (no compiler, no oneDNN wheel, not Linux x86-64), ``load``
says why and the models keep XLA's own convolutions.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rnn_jax.atomic import writing

SOURCE = Path(__file__).with_name("onednn_conv.cc")
TARGET = "rnn_jax_onednn_conv"  # the FFI target name the convolution calls
# The CPU-only oneDNN wheels (OpenMP runtime); pyproject's [train] extra installs them on Linux x86-64.
LIBRARY_DIST, HEADERS_DIST = "onednn-cpu-gomp", "onednn-devel-cpu-gomp"


@dataclass(frozen=True)
class KernelStatus:
    """Whether the kernel is registered with XLA, and if not, why (one readable line)."""

    available: bool
    reason: str = ""
    library: Path | None = None
    handle: object = field(default=None, repr=False, compare=False)  # keeps the library loaded


def cache_dir() -> Path:
    root = os.environ.get("RNN_JAX_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rnn_jax" / "kernels"


def _dist_file(dist: str, name: str) -> Path | None:
    """Where the wheel ``dist`` installed ``name`` (wheels put oneDNN under <prefix>/lib and /include)."""
    try:
        wheel = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None
    for f in wheel.files or []:
        if str(f).replace("\\", "/").endswith(name):
            return Path(wheel.locate_file(f)).resolve()
    return None


COMPILERS = ("c++", "g++", "clang++")  # searched in this order when $CXX is not set


def _compiler() -> str | None:
    wanted = os.environ.get("CXX")
    if wanted:
        return shutil.which(wanted)
    return next((found for name in COMPILERS if (found := shutil.which(name))), None)


def _toolchain() -> tuple[str, Path, Path, Path] | str:
    """(compiler, FFI include dir, oneDNN include dir, libdnnl.so), or why not."""
    if not (sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "AMD64")):
        return f"oneDNN kernels are built for Linux x86-64 only (this is {sys.platform} {os.uname().machine})"
    header = _dist_file(HEADERS_DIST, "include/oneapi/dnnl/dnnl.hpp")
    library = _dist_file(LIBRARY_DIST, "libdnnl.so")
    if header is None or library is None:
        return (f"the oneDNN wheels are not installed (pip install {LIBRARY_DIST}==2023.2.0 "
                f"{HEADERS_DIST}==2023.2.0, or reinstall rnn-jax[train])")
    compiler = _compiler()
    if compiler is None:
        return "no C++ compiler found (install g++, or set CXX)"
    import jax

    return compiler, Path(jax.ffi.include_dir()), header.parents[2], library


def toolchain_missing() -> str | None:
    """Why the kernel cannot be built here (platform, oneDNN wheels, compiler), or None when
    everything :func:`build` needs is present. With None, a failing build is a bug, not a skip."""
    tools = _toolchain()
    return tools if isinstance(tools, str) else None


def _compiler_version(compiler: str) -> str:
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def build(force: bool = False) -> Path:
    """The compiled kernel library, compiling it first if the cache has no matching build.

    Raises ``RuntimeError`` with the reason (and the compiler's own message) when it cannot.
    """
    import jaxlib

    tools = _toolchain()
    if isinstance(tools, str):
        raise RuntimeError(tools)
    compiler, ffi_include, dnnl_include, dnnl_library = tools
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([
        source, jaxlib.__version__.encode(), str(dnnl_library).encode(),
        metadata.version(LIBRARY_DIST).encode(), _compiler_version(compiler).encode()])).hexdigest()[:16]
    out = cache_dir() / f"onednn_conv-{key}.so"
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # atomic: a concurrent process sees the old state or the whole file; the linker's mode stays
    with writing(out, keep_mode=True) as tmp:
        command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-w", str(SOURCE),
                   f"-I{ffi_include}", f"-I{dnnl_include}", f"-L{dnnl_library.parent}", "-ldnnl",
                   f"-Wl,-rpath,{dnnl_library.parent}", "-o", str(tmp)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"compiling {SOURCE.name} failed ({' '.join(command)}):\n{tail}")
    return out


@functools.cache
def load() -> KernelStatus:
    """Build (if needed), load and register the kernel with XLA, once per process."""
    try:
        library = build()
        handle = ctypes.cdll.LoadLibrary(str(library))
        import jax

        jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(handle.RnnJaxOnednnConv), platform="cpu")
    except (RuntimeError, OSError, AttributeError) as error:
        return KernelStatus(False, str(error))
    return KernelStatus(True, library=library, handle=handle)

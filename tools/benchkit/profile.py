"""Where a train step's time goes on XLA:CPU, measured two ways.

- ``profile``: the profiler's op events, grouped by kind. XLA names every executed op after
  what it is (``ynn_fusion`` = a convolution/dot/reduction handed to YNNPACK,
  ``transpose_copy_fusion`` = a layout change, ``*_fusion`` = fused element-wise work such as
  BatchNorm and ReLU). Convolutions XLA keeps for itself (16 channels or fewer, the input
  gradients of strided convolutions) run as untraced tasks on Eigen's thread pool: their
  events show the dispatch only, so that row is a lower bound.
- ``parts``: wall-clock cost of parts of the step, by timing the step with a part removed
  or changed against the step as the driver runs it, in paired rounds (no profiler blind spots).
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tools.benchkit.report import Section, fmt, fmt_paired
from tools.benchkit.timing import alternate, load, paired_ratio, progress

KINDS = (  # (kind, pattern on the op name), first match wins
    ("convolution / dot / reduction (YNNPACK)", r"^ynn_fusion"),
    ("layout transpose", r"transpose"),
    ("convolution (XLA's own: dispatch only, work untraced)", r"conv"),
    ("element-wise fusions (BatchNorm, ReLU, loss, optimizer)", r"fusion|^wrapped_|^copy|^add|^multiply"),
)


def kind_of(op_name: str) -> str:
    for kind, pattern in KINDS:
        if re.search(pattern, op_name):
            return kind
    return "other"


def op_times(trace_dir: Path) -> dict[str, float]:
    """Microseconds per op name on XLA's worker threads, from the newest trace under ``trace_dir``."""
    files = sorted(trace_dir.rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise RuntimeError(f"the profiler wrote no trace under {trace_dir}")
    events = json.loads(gzip.decompress(files[-1].read_bytes()))["traceEvents"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    totals: dict[str, float] = collections.Counter()
    for e in events:
        if e.get("ph") != "X" or not threads.get((e["pid"], e["tid"]), "").startswith("tf_XLAEigen"):
            continue
        name = re.sub(r"\.\d+$", "", e["name"])
        if "Thunk" in name or name.startswith("end:") or "threadpool" in name.lower():
            continue
        totals[name] += e["dur"]
    return dict(totals)


def section_profile(ctx) -> Section:
    """Profile the cpu preset's train step and group the op time by kind."""
    import time

    import jax

    from rnn_jax.models.registry import model_spec
    from tools.benchkit.context import CPU_PRESET
    from tools.benchkit.jax_steps import build_step

    name, size, px, batch = ("resnet", "tiny", 16, 16) if ctx.quick else CPU_PRESET
    spec = model_spec(name, size)
    steps = 10 if ctx.quick else 40
    sec = Section("profile", f"Where the train step's time goes: {spec.label} {px}px batch {batch}, "
                  f"{steps} profiled steps", ["kind of op", "ms/step", "share", "top ops"])
    progress(f"profile: {spec.label} {px}px b{batch}: compiling")
    bench = build_step(spec, px, batch)
    bench.run(3)
    with tempfile.TemporaryDirectory(prefix="rnn_jax_profile_") as tmp:
        t0 = time.perf_counter()
        jax.profiler.start_trace(tmp)
        try:
            bench.run(steps)
        finally:
            jax.profiler.stop_trace()
        wall = time.perf_counter() - t0
        totals = op_times(Path(tmp))
    by_kind: dict[str, float] = collections.Counter()
    top: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for op, us in totals.items():
        by_kind[kind_of(op)] += us
        top[kind_of(op)].append((us, op))
    busy = sum(by_kind.values())
    for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        names = ", ".join(op for _, op in sorted(top[kind], reverse=True)[:3])
        sec.add([kind, fmt(us / 1e3 / steps, 2), fmt(100 * us / busy, 1, "%"), names],
                {"kind": kind, "ms_per_step": us / 1e3 / steps, "share": us / busy, "top_ops": names})
    sec.records.append({"model": spec.label, "image_size": px, "batch": batch, "steps": steps,
                        "busy_ms_per_step": busy / 1e3 / steps, "wall_ms_per_step": 1e3 * wall / steps,
                        "load": load()})
    sec.notes.append(f"op time summed over XLA's worker threads: {busy / 1e3 / steps:.1f} ms/step "
                     "(the profiler itself slows the wall clock, so compare shares, not wall time)")
    sec.notes.append("XLA's own convolutions run on Eigen's pool outside the traced events, so they are "
                     "under-counted here; `--only parts` measures costs in wall-clock time instead")
    return sec


@contextlib.contextmanager
def _call_replaced(cls: type, call: Callable) -> Iterator[None]:
    """``cls.__call__`` swapped for ``call`` while a step is traced (bench-only ablations)."""
    original = cls.__call__
    cls.__call__ = call
    try:
        yield
    finally:
        cls.__call__ = original


def _conv_without_kernel_gradient(conv, x):
    import jax

    kernel = jax.lax.stop_gradient(conv.kernel[...])
    return conv.conv_general_dilated(x, kernel, conv.strides, conv.padding,  # the model's own backend
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _batchnorm_as_affine(bn, x, use_running_average=None, *, mask=None):
    return x * bn.scale[...] + bn.bias[...]


def section_parts(ctx) -> Section:
    """The cpu preset's step with one part removed or changed, against the driver's step."""
    from flax import nnx

    from rnn_jax.models.registry import model_spec
    from tools.benchkit.context import CPU_PRESET, step_work
    from tools.benchkit.jax_steps import build_step

    name, size, px, batch = ("resnet", "tiny", 16, 16) if ctx.quick else CPU_PRESET
    spec = model_spec(name, size)
    baseline = "the driver's step"
    variants: dict[str, tuple[dict, contextlib.AbstractContextManager]] = {
        baseline: ({}, contextlib.nullcontext()),
        "convolutions in XLA (--conv xla)": ({"spec": model_spec(name, size, conv="xla")},
                                             contextlib.nullcontext()),
        "optimizer per leaf (no optax.flatten)": ({"flat_optimizer": False}, contextlib.nullcontext()),
        "no gradients for convolution kernels": ({}, _call_replaced(nnx.Conv, _conv_without_kernel_gradient)),
        "BatchNorm as a plain affine (no batch statistics)": ({}, _call_replaced(nnx.BatchNorm,
                                                                                 _batchnorm_as_affine)),
    }
    sec = Section("parts", f"What parts of the train step cost: {spec.label} {px}px batch {batch}, wall clock",
                  ["step variant", "img/s", "vs the unchanged step (IQR)", "ms/step", "difference ms/step",
                   "load 1m"])
    cands, base_of, programs = {}, {}, {}
    for label, (options, patch) in variants.items():
        progress(f"parts: compiling '{label}'")
        options = dict(options)
        with patch:  # the step is traced (and compiled) inside build_step
            bench = build_step(options.pop("spec", spec), px, batch, compiler_options={}, **options)
        cands[label], base_of[label], programs[label] = step_work(bench, ctx.block_s), baseline, bench.fingerprint
    if ctx.torch_ok:  # the same two measurements for the PyTorch twin, with every core
        from tools.benchkit.torch_ref import build_torch_step

        threads = max(ctx.torch_threads)
        torch_base = f"PyTorch ({threads} threads): the same step"
        for label, frozen in ((torch_base, False), ("PyTorch: no gradients for convolution kernels", True)):
            bench = build_torch_step(name, size, px, batch, frozen_conv_kernels=frozen)
            cands[label], base_of[label] = step_work(bench, ctx.block_s, threads), torch_base
    res = alternate(cands, ctx.rounds, warmup=1)
    for label, m in res.items():
        base = res[base_of[label]]
        ms, base_ms = 1e3 * batch / m.median, 1e3 * batch / base.median
        paired = None if label == base_of[label] else paired_ratio(m, base)
        sec.add([label, fmt(m.median), fmt_paired(paired, missing=""),
                 fmt(ms, 2), "" if paired is None else f"{ms - base_ms:+.2f}", f"{load()[0]:.1f}"],
                {"variant": label, "compared_with": base_of[label], **m.to_dict(), "ms_per_step": ms,
                 "paired_vs_unchanged": paired, "program": programs.get(label), "load": load()})
    sec.notes.append("a removed part's negative difference is what that part costs; the removals change the "
                     "maths (the step no longer trains properly) and exist only to measure")
    if len(set(programs.values())) < len(programs):
        sec.notes.append("WARNING: some JAX variants compiled to the same program as another (a patch no longer "
                         "takes effect with this flax); their rows measure nothing")
    return sec

"""Sections that try candidate speed-ups: XLA options, bfloat16, batch, widths, lax.scan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.benchkit.context import CPU_PRESET, Context, load1, step_work
from tools.benchkit.report import Section, fmt, ratio
from tools.benchkit.step_sections import train_data
from tools.benchkit.timing import alternate, load, progress

XLA_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # jaxlib 0.10.2 hands convolutions and reductions to YNNPACK by default; these narrow it
    "YNNPACK for dots only (convs, reductions: XLA)": {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
    "YNNPACK for convolutions only": {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"},
    "XNN graph fusion greedy": {"xla_cpu_experimental_xnn_graph_fusion_mode": "XNN_GRAPH_FUSION_MODE_GREEDY"},
    "fast math": {"xla_cpu_enable_fast_math": True},
    "prefer vector width 512": {"xla_cpu_prefer_vector_width": 512},
    "oneDNN": {"xla_cpu_use_onednn": True},
    "no concurrency-optimised scheduler": {"xla_cpu_enable_concurrency_optimized_scheduler": False},
}


def section_xla(ctx: Context) -> Section:
    """XLA CPU options, set per compilation on the very same step, timed side by side."""
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    sec = Section("xla", "XLA CPU options on the train step (compiler_options per compilation), images/s",
                  ["model", "px", "batch", "variant", "img/s", "vs default", "program", "compile s", "load 1m"])
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 32, 128)]
    variants = dict(list(XLA_VARIANTS.items())[:3]) if ctx.quick else XLA_VARIANTS
    for name, size, px, batch in rows:
        spec = model_spec(name, size)
        cands, compile_s, errors, prints = {}, {}, {}, {}
        for label, options in variants.items():
            progress(f"xla: {spec.label} {px}px b{batch}: compiling '{label}'")
            try:
                bench = build_step(spec, px, batch, compiler_options=options)
            except Exception as exc:  # an option this jaxlib does not accept
                errors[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                continue
            cands[label], compile_s[label] = step_work(bench, ctx.block_s), bench.compile_s
            prints[label] = bench.fingerprint
        res = alternate(cands, ctx.rounds, warmup=1)
        base = res["default"].median
        for label, m in res.items():
            same = label != "default" and prints[label] == prints["default"]
            sec.add([spec.label, str(px), str(batch), label, fmt(m.median), fmt(ratio(m.median, base), 2, "x"),
                     "same program" if same else prints[label], fmt(compile_s[label], 1), f"{load1():.1f}"],
                    {"model": spec.label, "image_size": px, "batch": batch, "variant": label,
                     "options": variants[label], "fingerprint": prints[label], "same_as_default": same,
                     **m.to_dict(), "load": load()})
        for label, err in errors.items():
            sec.add([spec.label, str(px), str(batch), label, "rejected", "", "", "", ""],
                    {"variant": label, "error": err})
    sec.notes.append("program: fingerprint of the optimised HLO; 'same program' = the option changed nothing, "
                     "so any difference in its row is noise (a measure of this run's noise level)")
    sec.notes.append("already tried via XLA_FLAGS in the stack notes (no change): xla_cpu_use_onednn, "
                     "xla_cpu_use_xnnpack, xla_cpu_experimental_onednn_custom_call, xla_cpu_use_thunk_runtime=false, "
                     "xla_cpu_multi_thread_eigen=false")
    return sec


def section_bf16(ctx: Context) -> Section:
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    sec = Section("bf16", "bfloat16 compute (ModelSpec dtype) vs float32, images/s",
                  ["model", "px", "batch", "float32", "bfloat16", "bf16/fp32", "load 1m"])
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 32, 128),
                                                           ("resnet", "large", 32, 128)]
    for name, size, px, batch in rows:
        progress(f"bf16: {name}-{size} {px}px b{batch}")
        cands = {dtype: step_work(build_step(model_spec(name, size, dtype=dtype), px, batch), ctx.block_s)
                 for dtype in ("float32", "bfloat16")}
        res = alternate(cands, ctx.rounds, warmup=1)
        a, b = res["float32"].median, res["bfloat16"].median
        sec.add([f"{name}-{size}", str(px), str(batch), fmt(a), fmt(b), fmt(ratio(b, a), 2, "x"), f"{load1():.1f}"],
                {"model": f"{name}-{size}", "image_size": px, "batch": batch,
                 "raw": {k: v.to_dict() for k, v in res.items()}, "load": load()})
    return sec


def section_batch(ctx: Context) -> Section:
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    name, size, px, _ = CPU_PRESET
    batches = [8, 16] if ctx.quick else [8, 16, 32, 64, 128]
    if ctx.quick:
        size, px = "tiny", 16
    sec = Section("batch", f"Batch size, {name}-{size} {px}px: images/s",
                  ["batch", "JAX", "PT 1t", "PT all", "JAX/PT", "load 1m"])
    cands: dict[str, Callable[[], float]] = {}
    for b in batches:
        progress(f"batch: building batch {b}")
        cands[f"jax {b}"] = step_work(build_step(model_spec(name, size), px, b), ctx.block_s)
        if ctx.torch_ok:
            from tools.benchkit.torch_ref import build_torch_step

            tb = build_torch_step(name, size, px, b)
            cands.update({f"pytorch {t}t {b}": step_work(tb, ctx.block_s, t) for t in ctx.torch_threads})
    progress(f"batch: timing {len(cands)} candidates in alternating rounds")
    res = alternate(cands, ctx.rounds, warmup=1)
    for b in batches:
        j = res[f"jax {b}"].median
        pts = {t: res[f"pytorch {t}t {b}"].median for t in ctx.torch_threads if f"pytorch {t}t {b}" in res}
        best = max(pts.values()) if pts else None
        sec.add([str(b), fmt(j), fmt(pts.get(1)), fmt(pts.get(max(ctx.torch_threads)) if len(pts) > 1 else None),
                 fmt(ratio(j, best), 2, "x"), f"{load1():.1f}"],
                {"batch": b, "jax": j, "pytorch": pts, "load": load()})
    return sec


def section_widths(ctx: Context) -> Section:
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    name, size, px, batch = CPU_PRESET
    widths = [(8, 16, 32), (16, 32, 64)] if ctx.quick else [(8, 16, 32), (16, 32, 64), (24, 48, 96), (32, 64, 128)]
    if ctx.quick:
        px, batch = 16, 16
    sec = Section("widths", f"Channel widths, resnet (1,1,1 blocks) {px}px batch {batch}",
                  ["widths", "fwd GFLOP/img", "JAX img/s", "JAX GFLOP/s", "PT best img/s", "PT GFLOP/s", "JAX/PT",
                   "load 1m"])
    cands: dict[str, Callable[[], float]] = {}
    gflops: dict[tuple, float] = {}
    for w in widths:
        progress(f"widths: {w}")
        bench = build_step(model_spec(name, size), px, batch, widths=w)
        gflops[w] = bench.gflops_fwd
        cands[f"jax {w}"] = step_work(bench, ctx.block_s)
        if ctx.torch_ok:
            from tools.benchkit.torch_ref import build_torch_step

            tb = build_torch_step(name, size, px, batch, widths=w)
            cands.update({f"pytorch {t}t {w}": step_work(tb, ctx.block_s, t) for t in ctx.torch_threads})
    res = alternate(cands, ctx.rounds, warmup=1)
    for w in widths:
        j = res[f"jax {w}"].median
        pts = [res[k].median for k in res if k.startswith("pytorch") and k.endswith(str(w))]
        best = max(pts) if pts else None
        gf = 3 * gflops[w]
        sec.add(["-".join(map(str, w)), fmt(gflops[w], 4), fmt(j), fmt(j * gf, 1), fmt(best),
                 fmt(None if best is None else best * gf, 1), fmt(ratio(j, best), 2, "x"), f"{load1():.1f}"],
                {"widths": list(w), "gflops_fwd": gflops[w], "jax": j, "pytorch_best": best, "load": load()})
    return sec


def section_scan(ctx: Context) -> Section:
    """A jitted lax.scan over a whole epoch (data on the device) vs the driver's Python loop."""
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_epoch_runners

    name, size, px, batch = CPU_PRESET
    if ctx.quick:
        size, px, batch = "tiny", 16, 16
    dataset, what = train_data(ctx, px)
    # the scan is slow on XLA:CPU (see the note), so it gets a subset to keep the bench short
    train = dataset.train.take(64 if ctx.quick else 256)
    sec = Section("scan", f"One epoch, {name}-{size} {px}px batch {batch}, {len(train)} {what} images: images/s",
                  ["way", "img/s", "vs driver loop", "spread", "load 1m"])
    progress("scan: compiling the driver loop, the staged loop and the lax.scan epoch")
    runners = build_epoch_runners(model_spec(name, size), train, batch, dataset.num_classes, scan=True)
    res = alternate(runners, max(2, ctx.rounds - 2), warmup=1)
    base = res["driver loop"].median
    for label, m in res.items():
        sec.add([label, fmt(m.median), fmt(ratio(m.median, base), 2, "x"), f"{m.spread:.0%}", f"{load1():.1f}"],
                {"way": label, **m.to_dict(), "load": load()})
    sec.notes.append("XLA:CPU runs convolutions inside a while-loop body (lax.scan/fori_loop) far slower than at "
                     "top level (jax-ml/jax#12868, open); fully unrolling the scan only matches the Python loop")
    return sec

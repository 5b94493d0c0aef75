"""Sections timed in-process around one train step: peak, train step, teacher, data path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tools.benchkit.context import CPU_PRESET, Context, best_torch, load1, step_work
from tools.benchkit.report import Section, fmt, fmt_paired, ratio
from tools.benchkit.timing import StepBench, alternate, load, paired_ratio, progress


def _torch_variants(ctx: Context, bench: StepBench, prefix: str = "pytorch") -> dict[str, Callable[[], float]]:
    return {f"{prefix} {t}t": step_work(bench, ctx.block_s, t) for t in ctx.torch_threads}


@contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def section_peak(ctx: Context) -> Section:
    """A large float32 matmul in numpy and in JAX: the machine's reachable GFLOP/s right now."""
    import jax
    import jax.numpy as jnp

    sec = Section("peak", "Machine peak: float32 matmul", ["engine", "n", "GFLOP/s", "spread", "load 1m"])
    n = 1024 if ctx.quick else 4096
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    dot = jax.jit(jnp.dot)
    gflop = 2 * n**3 / 1e9
    progress(f"peak: {n}x{n} matmul, numpy vs JAX")

    def numpy_work() -> float:
        np.dot(a, b)
        return gflop

    def jax_work() -> float:
        dot(ja, jb).block_until_ready()
        return gflop

    res = alternate({"numpy": numpy_work, "jax": jax_work}, ctx.rounds, warmup=1)
    for name, m in res.items():
        sec.add([name, str(n), fmt(m.median, 1), f"{m.spread:.0%}", f"{load1():.1f}"],
                {"engine": name, "n": n, "gflops": m.median, **m.to_dict()})
    ctx.peak_gflops = max(m.median for m in res.values())
    sec.notes.append(f"peak used for '% peak' columns: {ctx.peak_gflops:.1f} GFLOP/s (the better of the two, "
                     "measured in this run under the same load)")
    return sec


def _ensure_peak(ctx: Context) -> float:
    if ctx.peak_gflops is None:
        ctx.cache["peak_section"] = section_peak(ctx)
    return ctx.peak_gflops or float("nan")


def train_rows(quick: bool, models: list[str] | None = None) -> list[tuple[str, str, int, int]]:
    """(model, size, image px, batch): every registry model at its default size, batch 128,
    plus the CPU preset the live model is trained with (:data:`CPU_PRESET`), that model at
    batch 16 (the preset before) and resnet-small at the preset's size and batch.

    ``models`` keeps only rows whose label (``resnet-small``, ``resnet18``, ...) is listed.
    """
    from rnn_jax.models.registry import model_spec

    rows = _train_rows(quick)
    if models:
        rows = [r for r in rows if model_spec(r[0], r[1]).label in models]
    return rows


def _train_rows(quick: bool) -> list[tuple[str, str, int, int]]:
    if quick:
        return [("mlp", "tiny", 32, 32), ("resnet", "tiny", 16, 16), CPU_PRESET]
    return [("mlp", "small", 32, 128), ("resnet", "tiny", 32, 128), ("resnet", "small", 32, 128),
            ("resnet", "medium", 32, 128), ("resnet", "large", 32, 128), ("resnet", "xlarge", 32, 128),
            ("resnet18", "default", 32, 128), ("resnet34", "default", 32, 128), ("vit", "small", 32, 128),
            CPU_PRESET, (*CPU_PRESET[:3], 16), ("resnet", "small", *CPU_PRESET[2:])]


def section_train(ctx: Context) -> Section:
    """Train-step images/s: the real JAX step vs the same architecture in eager PyTorch."""
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    peak = _ensure_peak(ctx)
    sec = Section("train", "Train step (KD loss, AdamW), images/s: JAX vs PyTorch eager, same inputs",
                  ["model", "px", "batch", "params", "fwd GFLOP/img", "JAX img/s", "PT 1t", "PT all",
                   "JAX/PT", "paired (IQR)", "JAX GFLOP/s", "JAX %peak", "PT GFLOP/s", "PT %peak", "compile s", "load 1m"])
    for name, size, px, batch in train_rows(ctx.quick, ctx.models):
        spec = model_spec(name, size)
        progress(f"train: {spec.label} {px}px batch {batch}: compiling JAX step")
        jax_bench = build_step(spec, px, batch)
        cands = {"jax": step_work(jax_bench, ctx.block_s)}
        if ctx.torch_ok:
            from tools.benchkit.torch_ref import build_torch_step, has_reference

            if has_reference(name):
                cands.update(_torch_variants(ctx, build_torch_step(name, spec.size, px, batch)))
        progress(f"train: {spec.label}: timing {', '.join(cands)} in alternating rounds")
        res = alternate(cands, ctx.rounds, warmup=1)
        jax_rate = res["jax"].median
        pt_rate, pt_threads = best_torch(res)
        gf = jax_bench.gflops_fwd * 3  # forward + backward ~ 3x forward
        pt1 = res.get("pytorch 1t")
        pt_all = res.get(f"pytorch {max(ctx.torch_threads)}t") if len(ctx.torch_threads) > 1 else None
        paired = paired_ratio(res["jax"], res[f"pytorch {pt_threads}"]) if pt_threads else None
        rec = {"model": spec.label, "image_size": px, "batch": batch, "params": jax_bench.params,
               "gflops_fwd_per_image": jax_bench.gflops_fwd, "compile_s": jax_bench.compile_s,
               "jax_img_s": jax_rate, "pytorch_img_s": pt_rate, "pytorch_best_threads": pt_threads,
               "jax_over_pytorch": ratio(jax_rate, pt_rate), "jax_gflops": jax_rate * gf,
               "jax_over_pytorch_paired": None if paired is None else dict(zip(("median", "q25", "q75"), paired)),
               "pytorch_gflops": None if pt_rate is None else pt_rate * gf, "peak_gflops": peak,
               "load": load(), "raw": {k: v.to_dict() for k, v in res.items()}}
        sec.add([spec.label, str(px), str(batch), f"{jax_bench.params:,}", fmt(jax_bench.gflops_fwd, 4),
                 fmt(jax_rate), fmt(pt1.median if pt1 else None), fmt(pt_all.median if pt_all else None),
                 fmt(rec["jax_over_pytorch"], 2, "x"),
                 fmt_paired(paired),
                 fmt(rec["jax_gflops"], 1),
                 fmt(100 * rec["jax_gflops"] / peak, 1, "%"), fmt(rec["pytorch_gflops"], 1),
                 fmt(None if pt_rate is None else 100 * rec["pytorch_gflops"] / peak, 1, "%"),
                 fmt(jax_bench.compile_s, 1), f"{load1():.1f}"], rec)
        ctx.cache.setdefault("train", {})[(name, size, px, batch)] = rec
    sec.notes += [
        "JAX: rnn_jax.distill.step.make_train_step exactly as the driver builds it (alpha=0, teacher input "
        "zeros); PyTorch: the same architecture (tools/benchkit/torch_ref.py), same loss/optimizer, NCHW, eager.",
        "PT 1t / PT all: PyTorch with 1 intra-op thread / all cores; JAX/PT uses the faster of the two.",
        "paired (IQR): JAX/PT per round (both timed back to back), median and quartiles: steadier than the "
        "ratio of medians on a shared machine; the goal verdict uses it.",
        "GFLOP/s = images/s x 3 x forward GFLOPs per image (XLA cost analysis); %peak against the matmul peak.",
    ]
    if not ctx.torch_ok:
        sec.notes.append("torch is not installed: no PyTorch columns (pip install 'rnn-jax[bench]')")
    return sec


def section_teacher(ctx: Context) -> Section:
    """What the teacher costs per step: cached rows vs a forward pass per batch vs none."""
    from rnn_jax.models.registry import model_spec
    from tools.benchkit.jax_steps import build_step

    name, size, px, batch = (("resnet", "tiny", 16, 16) if ctx.quick else CPU_PRESET)
    spec = model_spec(name, size)
    sec = Section("teacher", f"Teacher cost, {spec.label} {px}px batch {batch}: images/s",
                  ["variant", "img/s", "vs no teacher", "spread", "load 1m"])
    cands: dict[str, Callable[[], float]] = {}
    for mode in ("none", "cached", "consistent"):
        progress(f"teacher: building JAX step with teacher={mode}")
        cands[f"jax {mode}"] = step_work(build_step(spec, px, batch, teacher=mode), ctx.block_s)
    if ctx.torch_ok:
        from tools.benchkit.torch_ref import build_torch_step

        for teacher in (False, True):
            bench = build_torch_step(name, size, px, batch, teacher=teacher)
            label = "pytorch forward/step" if teacher else "pytorch none"
            cands.update({f"{label} {t}t": step_work(bench, ctx.block_s, t) for t in ctx.torch_threads})
    progress(f"teacher: timing {len(cands)} variants in alternating rounds")
    res = alternate(cands, ctx.rounds, warmup=1)
    for label, m in res.items():
        base = res["jax none"] if label.startswith("jax") else res.get(
            f"pytorch none {label.split()[-1]}") if label.startswith("pytorch") else None
        sec.add([label, fmt(m.median), fmt(ratio(m.median, base.median if base else None), 2, "x"),
                 f"{m.spread:.0%}", f"{load1():.1f}"], {"variant": label, **m.to_dict(), "load": load()})
    sec.notes.append("cached: rows of logits computed once per generation (driver default); consistent: the "
                     "teacher's jitted forward on every augmented batch; both via lineage.driver.batch_teacher_logits")
    return sec


def folder_items(root: Path, split: str) -> list[tuple[Path, int]]:
    from rnn_jax.data.folders import IMAGE_EXTENSIONS, natural_key

    classes = sorted((d.name for d in (root / split).iterdir() if d.is_dir()), key=natural_key)
    return [(p, i) for i, c in enumerate(classes) for p in sorted((root / split / c).iterdir(), key=lambda p: natural_key(p.name))
            if p.suffix.lower() in IMAGE_EXTENSIONS]


def sld(ctx: Context, size: int):
    """Sign Language Digits at ``size`` px through the shared decoded cache (kept in the work dir)."""
    key = f"sld{size}"
    if key not in ctx.cache:
        from rnn_jax.data.folders import load_class_folders

        with _env("RNN_JAX_CACHE", str(ctx.workdir / "cache")):
            ctx.cache[key] = load_class_folders(ctx.data_root, size, progress=False)
    return ctx.cache[key]


def train_data(ctx: Context, size: int):
    """(dataset, description): Sign Language Digits when present, else the built-in gestures."""
    if ctx.data_root is not None:
        return sld(ctx, size), "Sign Language Digits"
    from rnn_jax.data.builtin import make_builtin_gestures

    return make_builtin_gestures(image_size=size, per_class=150 if ctx.quick else 300), "built-in gestures"


def section_data(ctx: Context) -> Section:
    """JPEG decode (first epoch) vs decoded cache vs the grain pipeline vs what the step consumes."""
    from rnn_jax.data.folders import load_class_folders
    from rnn_jax.data.pipeline import train_batches
    from rnn_jax.models.registry import model_spec
    from rnn_jax.preprocess import prepare, read_image
    from tools.benchkit.jax_steps import build_epoch_runners

    name, size, px, batch = CPU_PRESET
    sec = Section("data", f"Data path at {px}px, batch {batch}: images/s",
                  ["stage", "img/s", "spread", "load 1m"])
    rounds = 1 if ctx.quick else 3
    if ctx.data_root is not None:
        items = folder_items(ctx.data_root, "train") + folder_items(ctx.data_root, "val")
        if ctx.quick:
            items = items[:200]
        counter = {"n": 0}
        reuse_dir = ctx.workdir / "cache-reuse"
        root = ctx.data_root
        if ctx.quick:  # a small folder copy keeps the smoke run short
            root = ctx.workdir / "sld-subset"
            for p, _ in items:
                split = "train" if "train" in p.parts[-3] else "val"
                dest = root / split / p.parent.name / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, dest)

        def jpeg_first_epoch() -> float:
            counter["n"] += 1
            with _env("RNN_JAX_CACHE", str(ctx.workdir / f"cache-fresh-{counter['n']}")):
                ds = load_class_folders(root, px, progress=False)
            shutil.rmtree(ctx.workdir / f"cache-fresh-{counter['n']}", ignore_errors=True)
            return float(len(ds.train) + len(ds.val))

        def cache_reuse() -> float:
            with _env("RNN_JAX_CACHE", str(reuse_dir)):
                ds = load_class_folders(root, px, progress=False)
                n = len(ds.train) + len(ds.val)
                np.asarray(ds.train.images).sum()  # touch every byte of the memmap
            return float(n)

        def pytorch_way_decode() -> float:
            for p, _ in items:
                prepare(read_image(p, 3), px, "full")
            return float(len(items))

        progress(f"data: decoding {len(items)} JPEGs (fresh cache, cache reuse, per-epoch decode)")
        res = alternate({"JPEG folders, first epoch (decode + write cache, 2 threads)": jpeg_first_epoch,
                         "decoded cache reused (open memmap + read)": cache_reuse,
                         "PyTorch-project way: cv2 decode every epoch (1 thread)": pytorch_way_decode},
                        rounds, warmup=1)
        for label, m in res.items():
            sec.add([label, fmt(m.median), f"{m.spread:.0%}", f"{load1():.1f}"], {"stage": label, **m.to_dict()})
    else:
        sec.notes.append("no ../shared/data/sign-language-digits: JPEG rows skipped, pipeline on built-in gestures")

    dataset, what = train_data(ctx, px)
    train = dataset.train.take(256 if ctx.quick else None)
    counter2 = {"n": 0}

    def pipeline_only() -> float:
        counter2["n"] += 1
        n = 0
        for b in train_batches(train, batch, counter2["n"], "basic", True):
            n += len(b["labels"])
        return float(n)

    progress(f"data: grain pipeline vs train step on {what} ({len(train)} images)")
    runners = build_epoch_runners(model_spec(name, size), train, batch, dataset.num_classes, scan=False,
                                  prefetch=(0, 1))
    res = alternate({"grain pipeline alone (train_batches, augment=basic)": pipeline_only,
                     "train step on pre-staged batches (what the step consumes)": runners["staged loop"],
                     "train step fed by the pipeline (driver loop, cached teacher)": runners["driver loop"],
                     "  same, grain prefetch_threads=1 (default 2)": runners["driver loop, prefetch 1"],
                     "  same, grain prefetch_threads=0": runners["driver loop, prefetch 0"]},
                    ctx.rounds, warmup=1)
    for label, m in res.items():
        sec.add([label, fmt(m.median), f"{m.spread:.0%}", f"{load1():.1f}"], {"stage": label, **m.to_dict()})
    rates = {k.split(" (")[0]: v.median for k, v in res.items()}
    staged, fed = list(rates.values())[1], list(rates.values())[2]
    sec.notes.append(f"loader overhead in the training loop: {100 * (1 - fed / staged):+.1f}% "
                     f"(fed {fed:,.0f} vs staged {staged:,.0f} img/s); pipeline alone is "
                     f"{list(rates.values())[0] / staged:.0f}x the step's consumption ({what})")
    return sec

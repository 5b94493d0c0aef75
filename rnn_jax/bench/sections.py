"""The benchmark's sections. Each takes a :class:`Context` and returns a :class:`Section`.

Every comparison inside a section is timed in alternating rounds in this one process
(:func:`rnn_jax.bench.timing.alternate`), after warm-up, as medians; the 1-minute load
average is written next to every figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.bench.profile import section_profile
from rnn_jax.bench.report import Section, fmt, ratio
from rnn_jax.bench.timing import Measured, StepBench, alternate, load, progress, repeats_for

REPO = Path(__file__).resolve().parents[2]
CPU_PRESET = ("resnet", "medium", 64, 16)  # experiments/hagrid.py PRESETS["cpu"]: model, size, px, batch
LIVE_MODEL = ("resnet", "medium", 64)  # what the cpu preset trains, so what runs live


@dataclass
class Context:
    quick: bool = False
    rounds: int = 5
    block_s: float = 1.5  # seconds of work per timed block
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rnn_jax_bench_")))
    data_root: Path | None = None  # Sign Language Digits (class folders), None = absent
    video: Path | None = None
    peak_gflops: float | None = None
    torch_ok: bool = False
    models: list[str] | None = None  # train section: only these labels (e.g. resnet-small, mlp-tiny)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def torch_threads(self) -> list[int]:
        """PyTorch is timed with 1 thread and with every core; the faster is the reference."""
        return sorted({1, os.cpu_count() or 1})


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _set_torch_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _step_work(bench: StepBench, block_s: float, threads: int | None = None) -> Callable[[], float]:
    """A timed block of ``bench``: enough steps for ~block_s seconds (calibrated once)."""
    _set_torch_threads(threads)
    n = repeats_for(lambda: bench.run(1), block_s)

    def work() -> float:
        _set_torch_threads(threads)
        return bench.run(n)

    return work


def _torch_variants(ctx: Context, bench: StepBench, prefix: str = "pytorch") -> dict[str, Callable[[], float]]:
    return {f"{prefix} {t}t": _step_work(bench, ctx.block_s, t) for t in ctx.torch_threads}


def _best_torch(results: dict[str, Measured], prefix: str = "pytorch") -> tuple[float | None, str | None]:
    found = [(m.median, name) for name, m in results.items() if name.startswith(prefix + " ")]
    if not found:
        return None, None
    rate, name = max(found)
    return rate, name.split()[-1]


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


def _spec(name: str, size: str, dtype: str = "float32"):
    from rnn_jax.models.registry import ModelSpec

    return ModelSpec(name, "default" if name in ("resnet18", "resnet34") else size, dtype=dtype)


def _load1() -> float:
    return load()[0]


# ------------------------------------------------------------------------------- peak
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
        sec.add([name, str(n), fmt(m.median, 1), f"{m.spread:.0%}", f"{_load1():.1f}"],
                {"engine": name, "n": n, "gflops": m.median, **m.to_dict()})
    ctx.peak_gflops = max(m.median for m in res.values())
    sec.notes.append(f"peak used for '% peak' columns: {ctx.peak_gflops:.1f} GFLOP/s (the better of the two, "
                     "measured in this run under the same load)")
    return sec


def _ensure_peak(ctx: Context) -> float:
    if ctx.peak_gflops is None:
        ctx.cache["peak_section"] = section_peak(ctx)
    return ctx.peak_gflops or float("nan")


# ------------------------------------------------------------------------------ train
def train_rows(quick: bool, models: list[str] | None = None) -> list[tuple[str, str, int, int]]:
    """(model, size, image px, batch): every registry model at its default size, batch 128,
    plus the CPU preset the live model is trained with (64 px, batch 16) and that model at batch 32.

    ``models`` keeps only rows whose label (``resnet-small``, ``resnet18``, ...) is listed.
    """
    rows = _train_rows(quick)
    if models:
        rows = [r for r in rows if _spec(r[0], r[1]).label in models]
    return rows


def _train_rows(quick: bool) -> list[tuple[str, str, int, int]]:
    if quick:
        return [("mlp", "tiny", 32, 32), ("resnet", "tiny", 16, 16), CPU_PRESET]
    return [("mlp", "small", 32, 128), ("resnet", "tiny", 32, 128), ("resnet", "small", 32, 128),
            ("resnet", "medium", 32, 128), ("resnet", "large", 32, 128), ("resnet", "xlarge", 32, 128),
            ("resnet18", "default", 32, 128), ("resnet34", "default", 32, 128), ("vit", "small", 32, 128),
            CPU_PRESET, (*CPU_PRESET[:3], 32), ("resnet", "small", 64, 16)]


def section_train(ctx: Context) -> Section:
    """Train-step images/s: the real JAX step vs the same architecture in eager PyTorch."""
    from rnn_jax.bench.jax_steps import build_step

    peak = _ensure_peak(ctx)
    sec = Section("train", "Train step (KD loss, AdamW), images/s: JAX vs PyTorch eager, same inputs",
                  ["model", "px", "batch", "params", "fwd GFLOP/img", "JAX img/s", "PT 1t", "PT all",
                   "JAX/PT", "JAX GFLOP/s", "JAX %peak", "PT GFLOP/s", "PT %peak", "compile s", "load 1m"])
    for name, size, px, batch in train_rows(ctx.quick, ctx.models):
        spec = _spec(name, size)
        progress(f"train: {spec.label} {px}px batch {batch}: compiling JAX step")
        jax_bench = build_step(spec, px, batch)
        cands = {"jax": _step_work(jax_bench, ctx.block_s)}
        if ctx.torch_ok:
            from rnn_jax.bench.torch_ref import build_torch_step, has_reference

            if has_reference(name):
                cands.update(_torch_variants(ctx, build_torch_step(name, spec.size, px, batch)))
        progress(f"train: {spec.label}: timing {', '.join(cands)} in alternating rounds")
        res = alternate(cands, ctx.rounds, warmup=1)
        jax_rate = res["jax"].median
        pt_rate, pt_threads = _best_torch(res)
        gf = jax_bench.gflops_fwd * 3  # forward + backward ~ 3x forward
        pt1 = res.get("pytorch 1t")
        pt_all = res.get(f"pytorch {max(ctx.torch_threads)}t") if len(ctx.torch_threads) > 1 else None
        rec = {"model": spec.label, "image_size": px, "batch": batch, "params": jax_bench.params,
               "gflops_fwd_per_image": jax_bench.gflops_fwd, "compile_s": jax_bench.compile_s,
               "jax_img_s": jax_rate, "pytorch_img_s": pt_rate, "pytorch_best_threads": pt_threads,
               "jax_over_pytorch": ratio(jax_rate, pt_rate), "jax_gflops": jax_rate * gf,
               "pytorch_gflops": None if pt_rate is None else pt_rate * gf, "peak_gflops": peak,
               "load": load(), "raw": {k: v.to_dict() for k, v in res.items()}}
        sec.add([spec.label, str(px), str(batch), f"{jax_bench.params:,}", fmt(jax_bench.gflops_fwd, 4),
                 fmt(jax_rate), fmt(pt1.median if pt1 else None), fmt(pt_all.median if pt_all else None),
                 fmt(rec["jax_over_pytorch"], 2, "x"), fmt(rec["jax_gflops"], 1),
                 fmt(100 * rec["jax_gflops"] / peak, 1, "%"), fmt(rec["pytorch_gflops"], 1),
                 fmt(None if pt_rate is None else 100 * rec["pytorch_gflops"] / peak, 1, "%"),
                 fmt(jax_bench.compile_s, 1), f"{_load1():.1f}"], rec)
        ctx.cache.setdefault("train", {})[(name, size, px, batch)] = rec
    sec.notes += [
        "JAX: rnn_jax.distill.step.make_train_step exactly as the driver builds it (alpha=0, teacher input "
        "zeros); PyTorch: the same architecture (rnn_jax/bench/torch_ref.py), same loss/optimizer, NCHW, eager.",
        "PT 1t / PT all: PyTorch with 1 intra-op thread / all cores; JAX/PT uses the faster of the two.",
        "GFLOP/s = images/s x 3 x forward GFLOPs per image (XLA cost analysis); %peak against the matmul peak.",
    ]
    if not ctx.torch_ok:
        sec.notes.append("torch is not installed: no PyTorch columns (pip install 'rnn-jax[bench]')")
    return sec


# ---------------------------------------------------------------------------- teacher
def section_teacher(ctx: Context) -> Section:
    """What the teacher costs per step: cached rows vs a forward pass per batch vs none."""
    from rnn_jax.bench.jax_steps import build_step

    name, size, px, batch = (("resnet", "tiny", 16, 16) if ctx.quick else CPU_PRESET)
    spec = _spec(name, size)
    sec = Section("teacher", f"Teacher cost, {spec.label} {px}px batch {batch}: images/s",
                  ["variant", "img/s", "vs no teacher", "spread", "load 1m"])
    cands: dict[str, Callable[[], float]] = {}
    for mode in ("none", "cached", "consistent"):
        progress(f"teacher: building JAX step with teacher={mode}")
        cands[f"jax {mode}"] = _step_work(build_step(spec, px, batch, teacher=mode), ctx.block_s)
    if ctx.torch_ok:
        from rnn_jax.bench.torch_ref import build_torch_step

        for teacher in (False, True):
            bench = build_torch_step(name, size, px, batch, teacher=teacher)
            label = "pytorch forward/step" if teacher else "pytorch none"
            cands.update({f"{label} {t}t": _step_work(bench, ctx.block_s, t) for t in ctx.torch_threads})
    progress(f"teacher: timing {len(cands)} variants in alternating rounds")
    res = alternate(cands, ctx.rounds, warmup=1)
    for label, m in res.items():
        base = res["jax none"] if label.startswith("jax") else res.get(
            f"pytorch none {label.split()[-1]}") if label.startswith("pytorch") else None
        sec.add([label, fmt(m.median), fmt(ratio(m.median, base.median if base else None), 2, "x"),
                 f"{m.spread:.0%}", f"{_load1():.1f}"], {"variant": label, **m.to_dict(), "load": load()})
    sec.notes.append("cached: rows of logits computed once per generation (driver default); consistent: the "
                     "teacher's jitted forward on every augmented batch; both via lineage.driver.batch_teacher_logits")
    return sec


# ------------------------------------------------------------------------------- data
def _folder_items(root: Path, split: str) -> list[tuple[Path, int]]:
    from rnn_jax.data.folders import IMAGE_EXTENSIONS, natural_key

    classes = sorted((d.name for d in (root / split).iterdir() if d.is_dir()), key=natural_key)
    return [(p, i) for i, c in enumerate(classes) for p in sorted((root / split / c).iterdir(), key=lambda p: natural_key(p.name))
            if p.suffix.lower() in IMAGE_EXTENSIONS]


def _sld(ctx: Context, size: int):
    """Sign Language Digits at ``size`` px through the shared decoded cache (kept in the work dir)."""
    key = f"sld{size}"
    if key not in ctx.cache:
        from rnn_jax.data.folders import load_class_folders

        with _env("RNN_JAX_CACHE", str(ctx.workdir / "cache")):
            ctx.cache[key] = load_class_folders(ctx.data_root, size, progress=False)
    return ctx.cache[key]


def _train_data(ctx: Context, size: int):
    """(dataset, description): Sign Language Digits when present, else the built-in gestures."""
    if ctx.data_root is not None:
        return _sld(ctx, size), "Sign Language Digits"
    from rnn_jax.data.builtin import make_builtin_gestures

    return make_builtin_gestures(image_size=size, per_class=150 if ctx.quick else 300), "built-in gestures"


def section_data(ctx: Context) -> Section:
    """JPEG decode (first epoch) vs decoded cache vs the grain pipeline vs what the step consumes."""
    from rnn_jax.bench.jax_steps import build_epoch_runners
    from rnn_jax.data.folders import load_class_folders
    from rnn_jax.data.pipeline import train_batches
    from rnn_jax.preprocess import prepare, read_image

    name, size, px, batch = CPU_PRESET
    sec = Section("data", f"Data path at {px}px, batch {batch}: images/s",
                  ["stage", "img/s", "spread", "load 1m"])
    rounds = 1 if ctx.quick else 3
    if ctx.data_root is not None:
        items = _folder_items(ctx.data_root, "train") + _folder_items(ctx.data_root, "val")
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
            sec.add([label, fmt(m.median), f"{m.spread:.0%}", f"{_load1():.1f}"], {"stage": label, **m.to_dict()})
    else:
        sec.notes.append("no ../shared/data/sign-language-digits: JPEG rows skipped, pipeline on built-in gestures")

    dataset, what = _train_data(ctx, px)
    train = dataset.train.take(256 if ctx.quick else None)
    counter2 = {"n": 0}

    def pipeline_only() -> float:
        counter2["n"] += 1
        n = 0
        for b in train_batches(train, batch, counter2["n"], "basic", True):
            n += len(b["labels"])
        return float(n)

    progress(f"data: grain pipeline vs train step on {what} ({len(train)} images)")
    runners = build_epoch_runners(_spec(name, size), train, batch, dataset.num_classes, scan=False,
                                  prefetch=(0, 1))
    res = alternate({"grain pipeline alone (train_batches, augment=basic)": pipeline_only,
                     "train step on pre-staged batches (what the step consumes)": runners["staged loop"],
                     "train step fed by the pipeline (driver loop, cached teacher)": runners["driver loop"],
                     "  same, grain prefetch_threads=1 (default 2)": runners["driver loop, prefetch 1"],
                     "  same, grain prefetch_threads=0": runners["driver loop, prefetch 0"]},
                    ctx.rounds, warmup=1)
    for label, m in res.items():
        sec.add([label, fmt(m.median), f"{m.spread:.0%}", f"{_load1():.1f}"], {"stage": label, **m.to_dict()})
    rates = {k.split(" (")[0]: v.median for k, v in res.items()}
    staged, fed = list(rates.values())[1], list(rates.values())[2]
    sec.notes.append(f"loader overhead in the training loop: {100 * (1 - fed / staged):+.1f}% "
                     f"(fed {fed:,.0f} vs staged {staged:,.0f} img/s); pipeline alone is "
                     f"{list(rates.values())[0] / staged:.0f}x the step's consumption ({what})")
    return sec


# ------------------------------------------------------------------------- generation
def _run_hagrid(ctx: Context, out: Path, env: dict[str, str], epochs: int, max_train: int | None,
                extra: tuple[str, ...] = ()) -> dict:
    """``python -m experiments.hagrid`` with the cpu preset and 2 generations, as a user runs it."""
    import json

    cmd = [sys.executable, "-m", "experiments.hagrid", "--data", str(ctx.data_root), "--preset", "cpu",
           "--gens", "2", "--epochs", str(epochs), "--no-progress", "--out", str(out), "--overwrite"]
    if max_train:
        cmd += ["--max-train", str(max_train)]
    cmd += list(extra)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **env})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    record = json.loads((out / "lineage.json").read_text())
    gens = sorted(record["generations"], key=lambda g: g["gen"])
    return {"wall_s": wall, "gen_s": [g["time_s"] for g in gens], "val_acc": [g.get("val_acc") for g in gens],
            "command": " ".join(cmd)}


def section_generation(ctx: Context) -> Section:
    """Wall time of whole generations on Sign Language Digits: rnn-jax vs the PyTorch-project way."""
    sec = Section("generation", "Two generations on Sign Language Digits, fresh processes "
                  f"(cpu preset: {CPU_PRESET[0]}-{CPU_PRESET[1]} {CPU_PRESET[2]}px, batch {CPU_PRESET[3]}, "
                  + ("1 epoch on 256 images: a smoke run, start-up dominates)" if ctx.quick else "10 epochs)"),
                  ["way", "gen 0 s", "gen 1 s", "process wall s", "best val acc", "vs PyTorch way (gen 1 / wall)",
                   "load 1m"])
    if ctx.data_root is None:
        sec.skipped = "../shared/data/sign-language-digits is absent"
        return sec
    name, size, px, batch = CPU_PRESET
    epochs = 1 if ctx.quick else 10
    max_train = 256 if ctx.quick else None
    warm_jax, warm_data = ctx.workdir / "gen-jax-cache", ctx.workdir / "gen-data-warm"
    counter = {"n": 0}

    def today() -> dict:
        counter["n"] += 1  # fresh caches every time: the first run ever on new data
        return _run_hagrid(ctx, ctx.workdir / "gen-today",
                           {"RNN_JAX_CACHE": str(ctx.workdir / f"gen-data-{counter['n']}"),
                            "RNN_JAX_XLA_CACHE": str(ctx.workdir / f"gen-xla-{counter['n']}")}, epochs, max_train)

    warm_env = {"RNN_JAX_CACHE": str(warm_data), "RNN_JAX_XLA_CACHE": str(warm_jax)}
    cpus = os.cpu_count() or 1

    def warm() -> dict:
        return _run_hagrid(ctx, ctx.workdir / "gen-warm", {**warm_env, "XLA_FLAGS": ""}, epochs, max_train)

    def warm_devices() -> dict:
        return _run_hagrid(ctx, ctx.workdir / "gen-warm-dev",
                           {**warm_env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={cpus}"},
                           epochs, max_train, ("--devices", str(cpus)))

    variants: dict[str, Callable[[], dict]] = {
        "rnn-jax, first run (decodes the JPEGs, compiles)": today,
        "rnn-jax, second run (decoded cache and compilation cache warm)": warm,
    }
    use_devices = cpus > 1 and not ctx.quick  # the devices section measures it; quick stays under 3 minutes
    if use_devices:
        variants[f"rnn-jax, second run + {cpus} host devices (--devices {cpus})"] = warm_devices
    threads = None
    if ctx.torch_ok:
        from rnn_jax.bench.torch_ref import build_torch_step

        probe = build_torch_step(name, size, px, batch)
        _, best = _best_torch(alternate({f"pytorch {t}t": _step_work(probe, 0.5, t) for t in ctx.torch_threads},
                                        2, warmup=1))
        threads = int(best.rstrip("t")) if best else None
        args = ["torchway", "--data", str(ctx.data_root), "--model", name, "--size", size, "--px", str(px),
                "--batch", str(batch), "--gens", "2", "--epochs", str(epochs), "--threads", str(threads or 0)]
        if max_train:
            args += ["--max-train", str(max_train)]

        def torch_way() -> dict:
            t0 = time.perf_counter()
            out = _probe(args, {})
            return {"wall_s": time.perf_counter() - t0, "gen_s": [g["time_s"] for g in out["generations"]],
                    "val_acc": [g["val_acc"] for g in out["generations"]], "threads": out["threads"]}

        variants[f"PyTorch-project way (decode every epoch, teacher forward every step, {threads}t)"] = torch_way
    else:
        sec.notes.append("torch is not installed: the PyTorch-project way was not run")
    progress("generation: warming the caches of the 'second run' variants once")
    warm()
    if use_devices:
        warm_devices()
    rounds = 1 if ctx.quick else 2
    runs = _alternating_runs(variants, rounds, "generation")
    summary = {}
    for label, rs in runs.items():
        summary[label] = {"gen0": float(np.median([x["gen_s"][0] for x in rs])),
                          "gen1": float(np.median([x["gen_s"][1] for x in rs])),
                          "wall": float(np.median([x["wall_s"] for x in rs])),
                          "acc": max(a for x in rs for a in x["val_acc"] if a is not None)}
    torch_label = next((k for k in summary if k.startswith("PyTorch")), None)
    ref = summary.get(torch_label) if torch_label else None
    for label, m in summary.items():
        rel = (f"{fmt(ratio(m['gen1'], ref['gen1']), 2, 'x')} / {fmt(ratio(m['wall'], ref['wall']), 2, 'x')}"
               if ref and label != torch_label else "")
        sec.add([label, fmt(m["gen0"], 1), fmt(m["gen1"], 1), fmt(m["wall"], 1), fmt(m["acc"], 3), rel,
                 f"{_load1():.1f}"], {"way": label, **m, "runs": runs[label], "load": load()})
    if ref:
        today_m = summary[next(iter(variants))]
        sec.records.append({"ratio_gen1": ratio(today_m["gen1"], ref["gen1"]),
                            "ratio_wall": ratio(today_m["wall"], ref["wall"])})
    sec.notes.append(f"medians of {rounds} alternating round(s) of fresh processes; gen times are each run's own "
                     "per-generation time_s (rnn-jax: lineage.json, incl. teacher logits, evaluation, checkpoints); "
                     "process wall includes imports, decoding, compilation, and (rnn-jax) plots and reports")
    return sec


# ------------------------------------------------------------------------------- onnx
def onnx_models(quick: bool) -> list[tuple[str, str, int]]:
    if quick:
        return [("resnet", "tiny", 32)]
    return [LIVE_MODEL, ("resnet", "tiny", 64), ("resnet", "small", 64), ("resnet18", "default", 64),
            ("vit", "tiny", 64), ("mlp", "small", 64)]


def export_fresh(ctx: Context, name: str, size: str, px: int, classes: int = 10) -> tuple[Path, Path]:
    """Export a freshly initialised registry model (fp32, parity-gated) plus its static int8 copy."""
    key = ("onnx", name, size, px)
    if key in ctx.cache:
        return ctx.cache[key]
    from rnn_jax.export import export_model
    from rnn_jax.export.quantize import quantize_int8
    from rnn_jax.models.registry import create_model
    from rnn_jax.runtime.metadata import ModelInfo

    spec = _spec(name, size)
    model = create_model(spec, (px, px, 3), classes, seed=0)
    info = ModelInfo(class_names=tuple(str(i) for i in range(classes)), input_size=px, channels="RGB",
                     crop_mode="full", model_name=spec.label, run_name="bench (freshly initialised)")
    out = ctx.workdir / "onnx" / f"{spec.label}-{px}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    export_model(model, (px, px, 3), info, out)
    if ctx.data_root is not None:
        calibration = np.asarray(_sld(ctx, px).train.images[:64 if ctx.quick else 256])
    else:
        from rnn_jax.data.builtin import make_builtin_gestures

        calibration = make_builtin_gestures(image_size=px, per_class=20).train.images
    int8 = out.with_name(out.stem + ".int8.onnx")
    quantize_int8(out, int8, calibration)
    ctx.cache[key] = (out, int8)
    return out, int8


def section_onnx(ctx: Context) -> Section:
    """Batch-1 latency of exported models: fp32 vs int8, 1 and 2 onnxruntime threads."""
    from rnn_jax.export import measure_latency

    sec = Section("onnx", "ONNX batch-1 latency (Predictor.predict: cast + session + softmax), ms",
                  ["model", "px", "threads", "fp32 p50", "fp32 p95", "int8 p50", "int8 p95", "int8 speed-up",
                   "load 1m"])
    for name, size, px in onnx_models(ctx.quick):
        label = _spec(name, size).label
        progress(f"onnx: exporting {label} {px}px (fp32 + static int8)")
        fp32, int8 = export_fresh(ctx, name, size, px)
        image = np.random.default_rng(0).integers(0, 256, (px, px, 3), dtype=np.uint8)
        for threads in sorted({1, min(2, os.cpu_count() or 1)}):
            stats = measure_latency([fp32, int8], image, threads, repeats=3 if ctx.quick else 5,
                                    budget_s=0.2 if ctx.quick else 0.5)
            a, b = stats
            rec = {"model": label, "image_size": px, "threads": threads, "fp32_p50_ms": a.p50_ms,
                   "fp32_p95_ms": a.p95_ms, "int8_p50_ms": b.p50_ms, "int8_p95_ms": b.p95_ms, "load": load(),
                   "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}
            sec.add([label, str(px), str(threads), fmt(a.p50_ms, 3), fmt(a.p95_ms, 3), fmt(b.p50_ms, 3),
                     fmt(b.p95_ms, 3), fmt(ratio(a.p50_ms, b.p50_ms), 2, "x"), f"{_load1():.1f}"], rec)
            ctx.cache.setdefault("onnx_rows", []).append(rec)
    sec.notes.append("freshly initialised weights (latency does not depend on them); fp32 and int8 measured in "
                     "alternating rounds by rnn_jax.export.measure_latency; int8 = static QDQ, calibrated on "
                     "training images")
    return sec


# ------------------------------------------------------------------------------- live
def _predictor(path: Path, threads: int, spinning: bool = True):
    """A runtime Predictor, optionally with onnxruntime's spin-waiting of idle threads turned off."""
    from rnn_jax.runtime.predictor import Predictor

    if spinning:
        return Predictor.load(path, threads=threads)
    import onnxruntime as ort

    from rnn_jax.runtime.metadata import ModelInfo

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    info = ModelInfo.from_props(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
    predictor = Predictor(session, info, path)
    predictor._warmup()
    return predictor


def section_live(ctx: Context) -> Section:
    """End-to-end live loop (headless) on a video file: frames/s for onnxruntime settings."""
    import cv2

    from rnn_jax.live import iter_predictions

    sec = Section("live", "Live loop on a video file, headless (decode + preprocess + model + smoothing)",
                  ["variant", "frames/s", "model p50 ms", "loop p50 ms", "spread", "load 1m"])
    if ctx.video is None:
        sec.skipped = "../shared/data/video/Megamind.avi is absent"
        return sec
    name, size, px = ("resnet", "tiny", 32) if ctx.quick else LIVE_MODEL
    progress(f"live: exporting the live model {_spec(name, size).label} {px}px")
    fp32, int8 = export_fresh(ctx, name, size, px)
    max_frames = 60 if ctx.quick else None
    summaries: dict[str, list] = {}

    def video_only() -> float:
        cap = cv2.VideoCapture(str(ctx.video))
        n = 0
        while max_frames is None or n < max_frames:
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
        cap.release()
        return float(n)

    def live(path: Path, threads: int, spinning: bool, label: str) -> Callable[[], float]:
        predictor = _predictor(path, threads, spinning)

        def work() -> float:
            with iter_predictions(predictor, str(ctx.video), max_frames=max_frames) as stream:
                n = sum(1 for _ in stream)
                summaries.setdefault(label, []).append(stream.summary())
            return float(n)

        return work

    cands: dict[str, Callable[[], float]] = {"video decode only (ceiling)": video_only}
    variants = [(fp32, 1, True, "fp32, 1 thread (default_live_threads on 2 cores)"),
                (fp32, 2, True, "fp32, 2 threads"),
                (fp32, 1, False, "fp32, 1 thread, no spin-wait"),
                (fp32, 2, False, "fp32, 2 threads, no spin-wait"),
                (int8, 1, True, "int8, 1 thread")]
    for path, threads, spinning, label in variants:
        cands[label] = live(path, threads, spinning, label)
    progress(f"live: {len(cands)} variants on {ctx.video.name}, alternating")
    res = alternate(cands, 1 if ctx.quick else 3, warmup=0 if ctx.quick else 1)
    for label, m in res.items():
        sums = summaries.get(label, [])
        lat = float(np.median([s.latency_p50_ms for s in sums])) if sums else None
        loop_ms = float(np.median([s.loop_p50_ms for s in sums])) if sums else None
        rec = {"variant": label, "fps": m.median, "model_p50_ms": lat, "loop_p50_ms": loop_ms, **m.to_dict(),
               "load": load()}
        sec.add([label, fmt(m.median, 1), fmt(lat, 2), fmt(loop_ms, 2), f"{m.spread:.0%}", f"{_load1():.1f}"], rec)
    cap = cv2.VideoCapture(str(ctx.video))
    w, h, n = int(cap.get(3)), int(cap.get(4)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    sec.notes.append(f"{ctx.video.name}: {n} frames of {w}x{h}; model {_spec(name, size).label} {px}px, freshly "
                     "initialised; frames/s = frames / wall time of the whole pass (rnn_jax.live.iter_predictions)")
    return sec


# ------------------------------------------------------------------------ candidates
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
    from rnn_jax.bench.jax_steps import build_step

    sec = Section("xla", "XLA CPU options on the train step (compiler_options per compilation), images/s",
                  ["model", "px", "batch", "variant", "img/s", "vs default", "program", "compile s", "load 1m"])
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 32, 128)]
    variants = dict(list(XLA_VARIANTS.items())[:3]) if ctx.quick else XLA_VARIANTS
    for name, size, px, batch in rows:
        spec = _spec(name, size)
        cands, compile_s, errors, prints = {}, {}, {}, {}
        for label, options in variants.items():
            progress(f"xla: {spec.label} {px}px b{batch}: compiling '{label}'")
            try:
                bench = build_step(spec, px, batch, compiler_options=options)
            except Exception as exc:  # an option this jaxlib does not accept
                errors[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                continue
            cands[label], compile_s[label] = _step_work(bench, ctx.block_s), bench.compile_s
            prints[label] = bench.fingerprint
        res = alternate(cands, ctx.rounds, warmup=1)
        base = res["default"].median
        for label, m in res.items():
            same = label != "default" and prints[label] == prints["default"]
            sec.add([spec.label, str(px), str(batch), label, fmt(m.median), fmt(ratio(m.median, base), 2, "x"),
                     "same program" if same else prints[label], fmt(compile_s[label], 1), f"{_load1():.1f}"],
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
    from rnn_jax.bench.jax_steps import build_step

    sec = Section("bf16", "bfloat16 compute (ModelSpec dtype) vs float32, images/s",
                  ["model", "px", "batch", "float32", "bfloat16", "bf16/fp32", "load 1m"])
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 32, 128),
                                                           ("resnet", "large", 32, 128)]
    for name, size, px, batch in rows:
        progress(f"bf16: {name}-{size} {px}px b{batch}")
        cands = {dtype: _step_work(build_step(_spec(name, size, dtype), px, batch), ctx.block_s)
                 for dtype in ("float32", "bfloat16")}
        res = alternate(cands, ctx.rounds, warmup=1)
        a, b = res["float32"].median, res["bfloat16"].median
        sec.add([f"{name}-{size}", str(px), str(batch), fmt(a), fmt(b), fmt(ratio(b, a), 2, "x"), f"{_load1():.1f}"],
                {"model": f"{name}-{size}", "image_size": px, "batch": batch,
                 "raw": {k: v.to_dict() for k, v in res.items()}, "load": load()})
    return sec


def section_batch(ctx: Context) -> Section:
    from rnn_jax.bench.jax_steps import build_step

    name, size, px, _ = CPU_PRESET
    batches = [8, 16] if ctx.quick else [16, 32, 64, 128, 256]
    if ctx.quick:
        size, px = "tiny", 16
    sec = Section("batch", f"Batch size, {name}-{size} {px}px: images/s",
                  ["batch", "JAX", "PT 1t", "PT all", "JAX/PT", "load 1m"])
    cands: dict[str, Callable[[], float]] = {}
    for b in batches:
        progress(f"batch: building batch {b}")
        cands[f"jax {b}"] = _step_work(build_step(_spec(name, size), px, b), ctx.block_s)
        if ctx.torch_ok:
            from rnn_jax.bench.torch_ref import build_torch_step

            tb = build_torch_step(name, size, px, b)
            cands.update({f"pytorch {t}t {b}": _step_work(tb, ctx.block_s, t) for t in ctx.torch_threads})
    progress(f"batch: timing {len(cands)} candidates in alternating rounds")
    res = alternate(cands, ctx.rounds, warmup=1)
    for b in batches:
        j = res[f"jax {b}"].median
        pts = {t: res[f"pytorch {t}t {b}"].median for t in ctx.torch_threads if f"pytorch {t}t {b}" in res}
        best = max(pts.values()) if pts else None
        sec.add([str(b), fmt(j), fmt(pts.get(1)), fmt(pts.get(max(ctx.torch_threads)) if len(pts) > 1 else None),
                 fmt(ratio(j, best), 2, "x"), f"{_load1():.1f}"],
                {"batch": b, "jax": j, "pytorch": pts, "load": load()})
    return sec


def section_widths(ctx: Context) -> Section:
    from rnn_jax.bench.jax_steps import build_step

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
        bench = build_step(_spec(name, size), px, batch, widths=w)
        gflops[w] = bench.gflops_fwd
        cands[f"jax {w}"] = _step_work(bench, ctx.block_s)
        if ctx.torch_ok:
            from rnn_jax.bench.torch_ref import build_torch_step

            tb = build_torch_step(name, size, px, batch, widths=w)
            cands.update({f"pytorch {t}t {w}": _step_work(tb, ctx.block_s, t) for t in ctx.torch_threads})
    res = alternate(cands, ctx.rounds, warmup=1)
    for w in widths:
        j = res[f"jax {w}"].median
        pts = [res[k].median for k in res if k.startswith("pytorch") and k.endswith(str(w))]
        best = max(pts) if pts else None
        gf = 3 * gflops[w]
        sec.add(["-".join(map(str, w)), fmt(gflops[w], 4), fmt(j), fmt(j * gf, 1), fmt(best),
                 fmt(None if best is None else best * gf, 1), fmt(ratio(j, best), 2, "x"), f"{_load1():.1f}"],
                {"widths": list(w), "gflops_fwd": gflops[w], "jax": j, "pytorch_best": best, "load": load()})
    return sec


def section_scan(ctx: Context) -> Section:
    """A jitted lax.scan over a whole epoch (data on the device) vs the driver's Python loop."""
    from rnn_jax.bench.jax_steps import build_epoch_runners

    name, size, px, batch = CPU_PRESET
    if ctx.quick:
        size, px, batch = "tiny", 16, 16
    dataset, what = _train_data(ctx, px)
    # the scan is slow on XLA:CPU (see the note), so it gets a subset to keep the bench short
    train = dataset.train.take(64 if ctx.quick else 256)
    sec = Section("scan", f"One epoch, {name}-{size} {px}px batch {batch}, {len(train)} {what} images: images/s",
                  ["way", "img/s", "vs driver loop", "spread", "load 1m"])
    progress("scan: compiling the driver loop, the staged loop and the lax.scan epoch")
    runners = build_epoch_runners(_spec(name, size), train, batch, dataset.num_classes, scan=True)
    res = alternate(runners, max(2, ctx.rounds - 2), warmup=1)
    base = res["driver loop"].median
    for label, m in res.items():
        sec.add([label, fmt(m.median), fmt(ratio(m.median, base), 2, "x"), f"{m.spread:.0%}", f"{_load1():.1f}"],
                {"way": label, **m.to_dict(), "load": load()})
    sec.notes.append("XLA:CPU runs convolutions inside a while-loop body (lax.scan/fori_loop) far slower than at "
                     "top level (jax-ml/jax#12868, open); fully unrolling the scan only matches the Python loop")
    return sec


# ------------------------------------------------------------- fresh-process probes
def _alternating_runs(calls: dict[str, Callable[[], dict]], rounds: int, what: str) -> dict[str, list[dict]]:
    """Whole runs (fresh processes) in alternating order, A B / B A ...: the results of each, by label."""
    runs: dict[str, list[dict]] = {k: [] for k in calls}
    for r in range(rounds):
        for label in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            progress(f"{what}: {label} (round {r + 1}/{rounds})")
            runs[label].append(calls[label]())
    return runs


def _probe(args: list[str], env: dict[str, str]) -> dict:
    import json

    proc = subprocess.run([sys.executable, "-m", "rnn_jax.bench.probe", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, **env})
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_startup(ctx: Context) -> Section:
    """What a run pays before its first step, without and with JAX's persistent compilation cache."""
    name, size, px, batch = ("resnet", "tiny", 16, 16) if ctx.quick else CPU_PRESET
    sec = Section("startup", f"Start-up of a fresh process, {name}-{size} {px}px batch {batch}: seconds",
                  ["variant", "import", "first create_model", "step compile", "process total", "load 1m"])
    cache_dir = ctx.workdir / "jax-cache"
    variants = {
        "no compilation cache (RNN_JAX_XLA_CACHE=off)": {"JAX_COMPILATION_CACHE_DIR": ""},
        "persistent cache, warm (the driver's default)": {"JAX_COMPILATION_CACHE_DIR": str(cache_dir),
                                   "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                                   "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"},
    }
    args = ["startup", "--model", name, "--size", size, "--px", str(px), "--batch", str(batch)]
    progress("startup: filling the persistent cache once (cold run)")
    cold = _probe(args, variants["persistent cache, warm (the driver's default)"])
    rounds = 1 if ctx.quick else 3
    results = _alternating_runs({label: (lambda env=env: _probe(args, env)) for label, env in variants.items()},
                                rounds, "startup")
    rows = {"persistent cache, cold (first run)": [cold], **results}
    for label, runs in rows.items():
        med = {k: float(np.median([run[k] for run in runs])) for k in ("import_s", "create_model_s", "compile_s",
                                                                      "total_s")}
        sec.add([label, fmt(med["import_s"], 1), fmt(med["create_model_s"], 1), fmt(med["compile_s"], 1),
                 fmt(med["total_s"], 1), f"{_load1():.1f}"], {"variant": label, **med, "runs": runs, "load": load()})
    sec.notes.append("first create_model compiles one small XLA program per initializer shape (~50 for a ResNet); "
                     "the persistent cache (jax_compilation_cache_dir, min compile time 0) keeps them and the "
                     "train step across processes; medians of fresh processes run alternately")
    return sec


def section_devices(ctx: Context) -> Section:
    """Data-parallel over the cores as host devices (--devices N) vs one device, fresh processes.

    Each process also times the PyTorch twin in alternating rounds, so every JAX figure has
    its PyTorch reference measured in the same seconds.
    """
    cpus = os.cpu_count() or 1
    sec = Section("devices", "Host devices: train step images/s, one device vs the batch split over "
                  f"{cpus} host devices (fresh processes)",
                  ["model", "px", "batch", "variant", "JAX img/s", "vs 1 device", "PT best (same process)",
                   "JAX/PT", "load 1m"])
    if cpus < 2:
        sec.skipped = "one CPU core: nothing to split"
        return sec
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 32, 128),
                                                           ("resnet18", "default", 32, 128)]
    seconds = 2 if ctx.quick else 6
    for name, size, px, batch in rows:
        variants = {"1 device (default)": ([], {"XLA_FLAGS": ""}),
                    f"{cpus} host devices (--devices {cpus})":
                        (["--devices", str(cpus)], {"XLA_FLAGS": f"--xla_force_host_platform_device_count={cpus}"})}
        args = ["step", "--model", name, "--size", size, "--px", str(px), "--batch", str(batch),
                "--seconds", str(seconds), "--rounds", "2" if ctx.quick else "4"]
        if ctx.torch_ok:
            args.append("--torch")
        rounds = 1 if ctx.quick else 2
        runs = _alternating_runs({label: (lambda args=args, extra=extra, env=env: _probe(args + extra, env))
                                  for label, (extra, env) in variants.items()},
                                 rounds, f"devices: {name}-{size} {px}px b{batch}")
        base = float(np.median([x["img_s"] for x in runs["1 device (default)"]]))
        for label, rs in runs.items():
            jax_rate = float(np.median([x["img_s"] for x in rs]))
            pt = [max(v for k, v in x["medians"].items() if k.startswith("pytorch")) for x in rs
                  if any(k.startswith("pytorch") for k in x["medians"])]
            pt_rate = float(np.median(pt)) if pt else None
            jax_over_pt = float(np.median([x["img_s"] / p for x, p in zip(rs, pt)])) if pt else None
            sec.add([_spec(name, size).label, str(px), str(batch), label, fmt(jax_rate), fmt(ratio(jax_rate, base), 2, "x"),
                     fmt(pt_rate), fmt(jax_over_pt, 2, "x"), f"{_load1():.1f}"],
                    {"model": _spec(name, size).label, "image_size": px, "batch": batch, "variant": label,
                     "jax_img_s": jax_rate, "pytorch_img_s": pt_rate, "jax_over_pytorch": jax_over_pt,
                     "runs": rs, "load": load()})
            ctx.cache.setdefault("devices", {})[(name, size, px, batch, label.split()[0])] = jax_over_pt
    sec.notes.append(f"XLA_FLAGS=--xla_force_host_platform_device_count={cpus} is read once per process, so the "
                     "variants run as alternating fresh processes (rnn_jax.bench.probe); JAX/PT is the ratio "
                     "within each process (PyTorch best of 1 and all threads), median over processes")
    return sec


def section_allocator(ctx: Context) -> Section:
    """glibc's default malloc thresholds vs the driver's (rnn_jax.process_setup), fresh processes.

    JAX alone in each process, as in training: a PyTorch twin in the same process would hide
    the effect (freeing its large tensors raises glibc's dynamic mmap threshold for everyone).
    """
    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 64, 32)]
    sec = Section("allocator", "Host allocator: JAX train step alone in fresh processes",
                  ["model", "px", "batch", "host malloc", "JAX img/s", "vs glibc default", "page faults/step",
                   "sys s / wall s", "load 1m"])
    variants = {"glibc defaults (RNN_JAX_HOST_MALLOC=default)": {"RNN_JAX_HOST_MALLOC": "default"},
                "tuned (the driver's default)": {"RNN_JAX_HOST_MALLOC": "tuned"}}
    rounds = 1 if ctx.quick else 2
    for name, size, px, batch in rows:
        label = _spec(name, size).label
        args = ["step", "--model", name, "--size", size, "--px", str(px), "--batch", str(batch),
                "--seconds", "2" if ctx.quick else "6", "--rounds", "2" if ctx.quick else "4"]
        runs = _alternating_runs({variant: (lambda args=args, env=env: _probe(args, env))
                                  for variant, env in variants.items()},
                                 rounds, f"allocator: {label} {px}px b{batch}")
        base = None
        for variant, rs in runs.items():
            jax_rate = float(np.median([x["img_s"] for x in rs]))
            base = base or jax_rate
            faults = float(np.median([x["faults_per_step"] for x in rs]))
            sys_share = float(np.median([x["sys_over_wall"] for x in rs]))
            sec.add([label, str(px), str(batch), variant, fmt(jax_rate), fmt(ratio(jax_rate, base), 2, "x"),
                     fmt(faults), fmt(sys_share, 2), f"{_load1():.1f}"],
                    {"variant": variant, "model": label, "image_size": px, "batch": batch, "jax_img_s": jax_rate,
                     "faults_per_step": faults, "sys_over_wall": sys_share, "runs": rs, "load": load()})
    sec.notes.append(f"medians of {rounds} alternating fresh process(es) each; glibc raises its mmap threshold "
                     "by itself up to 32 MiB, so only steps whose temporaries are larger fault every step; page faults and sys time are the "
                     "step's own (getrusage around its timed blocks); no PyTorch in these processes (its frees "
                     "raise glibc's dynamic mmap threshold and would hide the effect)")
    return sec


# ---------------------------------------------------------------------------- presets
def preset_candidates(quick: bool) -> list[tuple[str, str, int]]:
    if quick:
        return [("resnet", "tiny", 32)]
    return [("resnet", "tiny", 32), ("resnet", "small", 32), ("resnet", "small", 64), ("resnet", "medium", 64),
            ("vit", "tiny", 32)]


def section_presets(ctx: Context) -> Section:
    """Short real trainings (one generation) per candidate CPU preset: accuracy per minute."""
    import json

    seeds = (0,) if ctx.quick else (0, 1)
    sec = Section("presets", f"CPU preset candidates: one generation via experiments.hagrid, seeds {seeds}",
                  ["model", "px", "epochs", "train s", "img/s", "val acc (per seed)", "mean val acc",
                   "val acc / train min", "live p50 ms (fp32, 1t)", "load 1m"])
    if ctx.data_root is not None:
        data_args, what = ["--data", str(ctx.data_root)], "Sign Language Digits"
    else:
        data_args, what = [], "built-in gestures"
    epochs = 1 if ctx.quick else 10
    onnx = {(r["model"], r["image_size"]): r["fp32_p50_ms"] for r in ctx.cache.get("onnx_rows", [])
            if r["threads"] == 1}
    for name, size, px in preset_candidates(ctx.quick):
        label = _spec(name, size).label
        runs = []
        for seed in seeds:
            out = ctx.workdir / "presets" / f"{label}-{px}-s{seed}"
            cmd = [sys.executable, "-m", "experiments.hagrid", *data_args, "--preset", "cpu", "--gens", "1",
                   "--model", name, "--size", size, "--image-size", str(px), "--epochs", str(epochs),
                   "--seed", str(seed), "--no-progress", "--out", str(out), "--overwrite"]
            if ctx.quick:
                cmd += ["--max-train", "128"]
            progress(f"presets: {label} {px}px, {epochs} epochs on {what}, seed {seed}")
            env = {**os.environ, "RNN_JAX_CACHE": str(ctx.workdir / "cache"), "MPLBACKEND": "Agg"}
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
                runs.append({"seed": seed, "error": tail[0]})
                continue
            gen = json.loads((out / "lineage.json").read_text())["generations"][0]
            runs.append({"seed": seed, "train_s": sum(e["time_s"] for e in gen["epochs"]),
                         "images_per_s": float(np.median([e["images_per_s"] for e in gen["epochs"]])),
                         "val_acc": gen["val_acc"], "command": " ".join(cmd)})
        ok = [r for r in runs if "error" not in r]
        if not ok:
            sec.add([label, str(px), str(epochs), "failed", "", "", "", "", "", ""], {"model": label, "runs": runs})
            continue
        train_s = float(np.mean([r["train_s"] for r in ok]))
        acc = float(np.mean([r["val_acc"] for r in ok]))
        ips = float(np.median([r["images_per_s"] for r in ok]))
        sec.add([label, str(px), str(epochs), fmt(train_s, 1), fmt(ips), " ".join(f"{r['val_acc']:.3f}" for r in ok),
                 fmt(acc, 3), fmt(acc / (train_s / 60), 2), fmt(onnx.get((label, px)), 3), f"{_load1():.1f}"],
                {"model": label, "image_size": px, "epochs": epochs, "train_s": train_s, "images_per_s": ips,
                 "val_acc": acc, "runs": runs, "load": load()})
    sec.notes.append(f"data: {what}; the cpu preset's batch {CPU_PRESET[3]} and lr 2e-3, {epochs} epochs, one generation; "
                     "train s = the epochs' own time (first epoch includes compilation); live p50 from the onnx "
                     "section when it ran at that size")
    return sec


SECTIONS: dict[str, Callable[[Context], Section]] = {
    "peak": section_peak, "train": section_train, "teacher": section_teacher, "data": section_data,
    "generation": section_generation, "onnx": section_onnx, "live": section_live, "xla": section_xla,
    "bf16": section_bf16, "batch": section_batch, "widths": section_widths, "scan": section_scan,
    "startup": section_startup, "devices": section_devices, "allocator": section_allocator,
    "profile": section_profile, "presets": section_presets,
}
# what --quick runs unless --only names sections: every row issue #7 asks for, in < 3 minutes
QUICK_SECTIONS = ("peak", "train", "teacher", "data", "generation", "onnx", "live")

"""Sections that time whole runs in fresh processes: generations, start-up, devices, presets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tools.benchkit.context import CPU_PRESET, REPO, Context, best_torch, load1, step_work
from tools.benchkit.report import Section, fmt, ratio
from tools.benchkit.timing import alternate, load, progress


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
        from tools.benchkit.torch_ref import build_torch_step

        probe = build_torch_step(name, size, px, batch)
        _, best = best_torch(alternate({f"pytorch {t}t": step_work(probe, 0.5, t) for t in ctx.torch_threads},
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
                 f"{load1():.1f}"], {"way": label, **m, "runs": runs[label], "load": load()})
    if ref:
        today_m = summary[next(iter(variants))]
        sec.records.append({"ratio_gen1": ratio(today_m["gen1"], ref["gen1"]),
                            "ratio_wall": ratio(today_m["wall"], ref["wall"])})
    sec.notes.append(f"medians of {rounds} alternating round(s) of fresh processes; gen times are each run's own "
                     "per-generation time_s (rnn-jax: lineage.json, incl. teacher logits, evaluation, checkpoints); "
                     "process wall includes imports, decoding, compilation, and (rnn-jax) plots and reports")
    return sec


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

    proc = subprocess.run([sys.executable, "-m", "tools.benchkit.probe", *args], cwd=REPO, capture_output=True,
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
                 fmt(med["total_s"], 1), f"{load1():.1f}"], {"variant": label, **med, "runs": runs, "load": load()})
    sec.notes.append("first create_model compiles one small XLA program per initializer shape (~50 for a ResNet); "
                     "the persistent cache (jax_compilation_cache_dir, min compile time 0) keeps them and the "
                     "train step across processes; medians of fresh processes run alternately")
    return sec


def section_devices(ctx: Context) -> Section:
    """Data-parallel over the cores as host devices (--devices N) vs one device, fresh processes.

    Each process also times the PyTorch twin in alternating rounds, so every JAX figure has
    its PyTorch reference measured in the same seconds.
    """
    from rnn_jax.models.registry import model_spec

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
            sec.add([model_spec(name, size).label, str(px), str(batch), label, fmt(jax_rate), fmt(ratio(jax_rate, base), 2, "x"),
                     fmt(pt_rate), fmt(jax_over_pt, 2, "x"), f"{load1():.1f}"],
                    {"model": model_spec(name, size).label, "image_size": px, "batch": batch, "variant": label,
                     "jax_img_s": jax_rate, "pytorch_img_s": pt_rate, "jax_over_pytorch": jax_over_pt,
                     "runs": rs, "load": load()})
            ctx.cache.setdefault("devices", {})[(name, size, px, batch, label.split()[0])] = jax_over_pt
    sec.notes.append(f"XLA_FLAGS=--xla_force_host_platform_device_count={cpus} is read once per process, so the "
                     "variants run as alternating fresh processes (tools.benchkit.probe); JAX/PT is the ratio "
                     "within each process (PyTorch best of 1 and all threads), median over processes")
    return sec


def section_allocator(ctx: Context) -> Section:
    """glibc's default malloc thresholds vs the driver's (rnn_jax.process_setup), fresh processes.

    JAX alone in each process, as in training: a PyTorch twin in the same process would hide
    the effect (freeing its large tensors raises glibc's dynamic mmap threshold for everyone).
    """
    from rnn_jax.models.registry import model_spec

    rows = [("resnet", "tiny", 16, 16)] if ctx.quick else [CPU_PRESET, ("resnet", "small", 64, 32)]
    sec = Section("allocator", "Host allocator: JAX train step alone in fresh processes",
                  ["model", "px", "batch", "host malloc", "JAX img/s", "vs glibc default", "page faults/step",
                   "sys s / wall s", "load 1m"])
    variants = {"glibc defaults (RNN_JAX_HOST_MALLOC=default)": {"RNN_JAX_HOST_MALLOC": "default"},
                "tuned (the driver's default)": {"RNN_JAX_HOST_MALLOC": "tuned"}}
    rounds = 1 if ctx.quick else 2
    for name, size, px, batch in rows:
        label = model_spec(name, size).label
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
                     fmt(faults), fmt(sys_share, 2), f"{load1():.1f}"],
                    {"variant": variant, "model": label, "image_size": px, "batch": batch, "jax_img_s": jax_rate,
                     "faults_per_step": faults, "sys_over_wall": sys_share, "runs": rs, "load": load()})
    sec.notes.append(f"medians of {rounds} alternating fresh process(es) each; glibc raises its mmap threshold "
                     "by itself up to 32 MiB, so only steps whose temporaries are larger fault every step; page faults and sys time are the "
                     "step's own (getrusage around its timed blocks); no PyTorch in these processes (its frees "
                     "raise glibc's dynamic mmap threshold and would hide the effect)")
    return sec


def preset_candidates(quick: bool) -> list[tuple[str, str, int]]:
    if quick:
        return [("resnet", "tiny", 32)]
    return [("resnet", "tiny", 32), ("resnet", "small", 32), ("resnet", "small", 64), ("resnet", "medium", 64),
            ("vit", "tiny", 32)]


def section_presets(ctx: Context) -> Section:
    """Short real trainings (one generation) per candidate CPU preset: accuracy per minute."""
    import json

    from rnn_jax.models.registry import model_spec

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
        label = model_spec(name, size).label
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
                 fmt(acc, 3), fmt(acc / (train_s / 60), 2), fmt(onnx.get((label, px)), 3), f"{load1():.1f}"],
                {"model": label, "image_size": px, "epochs": epochs, "train_s": train_s, "images_per_s": ips,
                 "val_acc": acc, "runs": runs, "load": load()})
    sec.notes.append(f"data: {what}; the cpu preset's batch {CPU_PRESET[3]} and lr 2e-3, {epochs} epochs, one generation; "
                     "train s = the epochs' own time (first epoch includes compilation); live p50 from the onnx "
                     "section when it ran at that size")
    return sec

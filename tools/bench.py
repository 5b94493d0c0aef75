"""Performance, measured side by side: rnn-jax (JAX) vs plain PyTorch on this machine.

    python tools/bench.py                        # everything (~45-60 min on 2 busy cores)
    python tools/bench.py --quick                # the issue's rows, tiny models, few rounds (~2.5 min)
    python tools/bench.py --only train,teacher   # some sections
    python tools/bench.py --skip presets --json runs/bench.json

Every comparison runs in this one process, candidates in alternating rounds (A B B A ...)
after warm-up, reported as medians, with the load average beside each figure: other
processes slow every candidate of a round alike, so ratios stay meaningful on a shared
machine. Sections:

  peak        large float32 matmul (numpy, JAX): the GFLOP/s the '% peak' columns use
  train       train-step images/s per registry model, JAX vs the same net in PyTorch eager
  teacher     cached vs consistent vs no teacher (and PyTorch's forward-every-step)
  data        JPEG decode (first epoch) vs decoded cache vs grain pipeline vs the step
  generation  two whole generations on Sign Language Digits: rnn-jax vs the PyTorch-project way
  onnx        exported models at batch 1: p50/p95, fp32/int8, 1 and 2 threads
  live        live loop on a video file, headless: frames/s per onnxruntime setting
  hands       live loop with the hand finder (detect/track + crop + model), 1 thread: p50 ms, frames/s
  budget      the hand finder alone, 1 core, frames at 30 fps: a6a6dc6 (before the tile search) vs
              today on idle videos, Megamind, HaGRID photos held, tracked hand photos (issue 34)
  xla         XLA CPU options on the step        bf16     bfloat16 compute
  batch       batch-size effect                   widths   channel widths
  scan        lax.scan over an epoch vs the driver's loop
  startup     a fresh process's start-up, with and without the compilation cache
  devices     the batch split over the cores as host devices (--devices N)
  allocator   glibc's default malloc thresholds vs the driver's (rnn_jax/process_setup.py)
  profile     the cpu preset step under jax.profiler: op time by kind (convs, transposes, ...)
  parts       the cpu preset step with a part removed (kernel gradients, BatchNorm statistics) or
              changed (per-leaf optimizer): what each costs in wall-clock time
  presets     one short training per CPU preset candidate: accuracy per minute

--quick runs peak, train, teacher, data, generation, onnx, live and hands (every figure the
performance issue asks for) with tiny models and short blocks; add others with --only.

PyTorch comes with the bench extra: pip install 'rnn-jax[bench]' (sections still run
without it, minus the PyTorch columns). Data from ../shared/data is used when present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax.errors import main_guard  # noqa: E402
from tools.benchkit.report import Section, fmt, markdown, render  # noqa: E402
from tools.benchkit.sections import (  # noqa: E402
    CPU_PRESET,
    LIVE_MODEL,
    QUICK_SECTIONS,
    SECTIONS,
    Context,
    torch_available,
)
from tools.benchkit.timing import load, load_str  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_ORDER = list(SECTIONS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tools/bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, short blocks, few rounds")
    parser.add_argument("--only", default=None, metavar="SECTIONS",
                        help=f"comma-separated sections to run (from: {', '.join(DEFAULT_ORDER)})")
    parser.add_argument("--skip", default="", metavar="SECTIONS", help="comma-separated sections to leave out")
    parser.add_argument("--models", default=None, metavar="LABELS",
                        help="train section: only these models, e.g. resnet-small,resnet18 (default all)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default 5, quick 2)")
    parser.add_argument("--block", type=float, default=None,
                        help="seconds of work per timed block (default 1.5, quick 0.3)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="where to write the results (default runs/bench-<time>.json)")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    parser.add_argument("--data", default=str(SHARED / "sign-language-digits"),
                        help="Sign Language Digits class folders (skipped with a message when absent)")
    parser.add_argument("--video", default=str(SHARED / "video" / "Megamind.avi"),
                        help="video file for the live loop (skipped with a message when absent)")
    parser.add_argument("--no-torch", action="store_true", help="do not use PyTorch even if it is installed")
    parser.add_argument("--budget-vs", default=None, metavar="COMMIT",
                        help="budget section: also time this commit's finder with today's default --hand-search "
                             "fields, in the same rounds (a before/after of a finder change)")
    return parser


def parse_sections(only: str | None, skip: str, quick: bool = False) -> list[str]:
    default = list(QUICK_SECTIONS) if quick else list(DEFAULT_ORDER)
    chosen = [s.strip() for s in only.split(",") if s.strip()] if only else default
    skipped = {s.strip() for s in skip.split(",") if s.strip()}
    unknown = [s for s in [*chosen, *skipped] if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(DEFAULT_ORDER)}")
    return [s for s in DEFAULT_ORDER if s in chosen and s not in skipped]


def machine() -> dict:
    import jax

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "jax": jax.__version__, "backend": jax.default_backend()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = names[0] if names else "?"
    except OSError:
        info["cpu"] = "?"
    for module in ("flax", "torch", "onnxruntime", "numpy"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def step_verdict(train_record: dict) -> tuple[float, str]:
    """(JAX/PyTorch, note) for a train row: the paired per-round ratio when there is one, and a
    warning when its interquartile range straddles 1.0 (the rounds disagree on the verdict)."""
    paired = train_record.get("jax_over_pytorch_paired")
    if not paired:
        return train_record["jax_over_pytorch"], ""
    note = f", rounds' IQR {paired['q25']:.2f}-{paired['q75']:.2f}"
    if paired["q25"] <= 1.0 <= paired["q75"]:
        note += ": within this run's noise, repeat with more --rounds before trusting the verdict"
    return paired["median"], note


def goals(results: dict[str, Section], ctx: Context) -> list[str]:
    """The issue's goals, checked against what this run measured (only those it measured)."""
    lines = []
    train = ctx.cache.get("train", {})
    cpu = train.get(CPU_PRESET)
    if cpu and cpu.get("jax_over_pytorch") is not None:
        r, note = step_verdict(cpu)
        lines.append(f"[{'met' if r >= 1.0 else 'NOT met'}] cpu preset train step "
                     f"({CPU_PRESET[0]}-{CPU_PRESET[1]} {CPU_PRESET[2]}px b{CPU_PRESET[3]}) "
                     f"JAX/PyTorch = {r:.2f}x per round (goal >= 1.0x{note})")
    r18 = train.get(("resnet18", "default", 32, 128))
    if r18 and r18.get("jax_over_pytorch") is not None:
        r, note = step_verdict(r18)
        lines.append(f"[{'met' if r >= 1.0 else 'NOT met'}] ResNet-18 32px b128 JAX/PyTorch = {r:.2f}x per round "
                     f"(goal >= 1.0x{note})")
    dev = ctx.cache.get("devices", {})
    r2 = next((v for k, v in dev.items() if k[:4] == CPU_PRESET and k[4] != "1" and v is not None), None)
    if r2 is not None:
        lines.append(f"[{'met' if r2 >= 1.0 else 'NOT met'}] cpu preset train step with --devices "
                     f"{os.cpu_count()} (host devices): JAX/PyTorch = {r2:.2f}x in the same processes (goal >= 1.0x)")
    gen = results.get("generation")
    if gen and not gen.skipped:
        ratios = [r for r in gen.records if "ratio_gen1" in r]
        if ratios and ratios[0]["ratio_gen1"] is not None:
            r1, rw = ratios[0]["ratio_gen1"], ratios[0]["ratio_wall"]
            verdict = "smoke run, not the goal" if ctx.quick else ("met" if r1 <= 0.5 else "NOT met")
            lines.append(f"[{verdict}] a generation on Sign Language Digits: rnn-jax / "
                         f"PyTorch-project way = {r1:.2f}x (whole run incl. decode+compile {fmt(rw, 2, 'x')}; "
                         "goal <= 0.5x)")
    for row in ctx.cache.get("onnx_rows", []):
        if (row["model"], row["image_size"]) == (f"{LIVE_MODEL[0]}-{LIVE_MODEL[1]}", LIVE_MODEL[2]) and row["threads"] == 1:
            p50 = row["fp32_p50_ms"]
            lines.append(f"[{'met' if p50 <= 10 else 'NOT met'}] exported default live model p50 at batch 1, 1 thread: "
                         f"{p50:.2f} ms fp32, {row['int8_p50_ms']:.2f} ms int8 (goal <= 10 ms)")
    live = results.get("live")
    if live and not live.skipped:
        fps = [r for r in live.records if r.get("variant", "").startswith("fp32, 1 thread (")]
        if fps:
            v = fps[0]["fps"]
            lines.append(f"[{'met' if v >= 60 else 'NOT met'}] live loop headless on {Path(ctx.video).name}: "
                         f"{v:.0f} frames/s with the default settings (goal >= 60)")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = parse_sections(args.only, args.skip, args.quick)
    from rnn_jax.process_setup import tune_host_allocator

    host_malloc = tune_host_allocator()  # as the driver does, so in-process steps see what training sees
    quick = args.quick
    data = Path(args.data)
    video = Path(args.video)
    ctx = Context(quick=quick, rounds=args.rounds or (2 if quick else 5), block_s=args.block or (0.3 if quick else 1.5),
                  data_root=data if (data / "train").is_dir() else None,
                  video=video if video.is_file() else None,
                  torch_ok=not args.no_torch and torch_available(),
                  models=[m.strip() for m in args.models.split(",")] if args.models else None,
                  budget_vs=args.budget_vs)
    if ctx.torch_ok:
        from tools.benchkit.torch_ref import setup_threads

        setup_threads()
    started = time.perf_counter()
    load_start = load()
    command = " ".join(["python tools/bench.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"bench: {', '.join(names)}{' (quick)' if quick else ''}; {ctx.rounds} alternating rounds of "
          f"~{ctx.block_s:g} s; load {load_str(load_start)}; host malloc {host_malloc}; work dir {ctx.workdir}",
          file=sys.stderr, flush=True)
    if ctx.data_root is None:
        print(f"bench: no Sign Language Digits at {data}: the sections that need it skip or fall back",
              file=sys.stderr)
    if not ctx.torch_ok:
        print("bench: torch not available: no PyTorch reference (pip install 'rnn-jax[bench]')", file=sys.stderr)
    results: dict[str, Section] = {}
    try:
        for name in names:
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                section = SECTIONS[name](ctx)
            except Exception as exc:  # one broken section must not lose the others' numbers
                section = Section(name, name, skipped=f"failed: {type(exc).__name__}: {exc}")
            section.seconds = time.perf_counter() - t0
            if "peak_section" in ctx.cache and "peak" not in results and name != "peak":
                results["peak"] = ctx.cache.pop("peak_section")
            results[name] = section
            print(render(section) + "\n", file=sys.stderr, flush=True)
    finally:
        import shutil

        shutil.rmtree(ctx.workdir, ignore_errors=True)
    total = time.perf_counter() - started
    load_end = load()

    print(f"\nrnn-jax benchmark: {command}")
    info = machine()
    print(f"machine: {info.get('cpu')} x{info['cpus']}, jax {info['jax']} ({info['backend']}), "
          f"torch {info.get('torch') or 'absent'}, onnxruntime {info.get('onnxruntime')}")
    print(f"load average (1/5/15 min): start {load_str(load_start)}, end {load_str(load_end)}; total {total:.0f} s; "
          f"host malloc {host_malloc}\n")
    ordered = [results[n] for n in DEFAULT_ORDER if n in results]
    for section in ordered:
        print(render(section) + "\n")
    checked = goals(results, ctx)
    if checked:
        print("Goals (issue #7):")
        for line in checked:
            print(f"  {line}")
    if args.markdown:
        for section in ordered:
            print(f"\n### {section.title}\n\n{markdown(section)}")
    out = Path(args.json) if args.json else REPO / "runs" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "quick": quick, "machine": info, "host_malloc": host_malloc, "load_start": load_start, "load_end": load_end,
               "seconds": round(total, 1), "sections": {s.name: s.to_dict() for s in ordered}, "goals": checked}
    out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    main_guard(main)

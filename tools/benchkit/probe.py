"""Measurements that need a fresh process (start-up cost, XLA device flags), run by the benchmark.

    python -m tools.benchkit.probe startup --model resnet --size small --px 64 --batch 32
    python -m tools.benchkit.probe torchway --data ../shared/data/sign-language-digits --gens 2
    XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python -m tools.benchkit.probe step --devices 2 --seconds 8

Prints one JSON line on stdout. ``startup`` times what a training run pays before its
first step (imports, the first ``create_model``, the step's compilation); ``step`` times
the driver's train step (data-parallel over ``--devices`` host devices when > 1);
``torchway`` trains ``--gens`` generations the PyTorch project's way
(:func:`tools.benchkit.torch_ref.pytorch_project_lineage`) and reports their times.
"""

from __future__ import annotations

import argparse
import json
import time

T_START = time.perf_counter()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.benchkit.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("startup", "step", "torchway"))
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--size", default="small")
    parser.add_argument("--px", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--data", default=None, help="torchway: class folders with train/ and val/")
    parser.add_argument("--gens", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=None, help="torchway: PyTorch intra-op threads")
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=4, help="step: alternating timed rounds")
    parser.add_argument("--torch", action="store_true", help="step: also time the PyTorch twin, alternating")
    parser.add_argument("--sync-every", type=int, default=20, help="wait for the step every N steps")
    args = parser.parse_args(argv)
    if args.what == "torchway":
        print(json.dumps(torchway(args)))
        return

    from rnn_jax.process_setup import tune_host_allocator

    host_malloc = tune_host_allocator()  # as the driver does ($RNN_JAX_HOST_MALLOC=default: glibc's defaults)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from rnn_jax.distill.schedules import learning_rate_schedule
    from rnn_jax.distill.step import (
        init_state,
        make_optimizer,
        make_train_step,
        split_model,
    )
    from rnn_jax.distributed import make_placement
    from rnn_jax.models.registry import create_model, model_spec

    t_import = time.perf_counter() - T_START
    spec = model_spec(args.model, args.size)
    shape = (args.px, args.px, 3)
    t0 = time.perf_counter()
    model = create_model(spec, shape, 10, seed=0)
    jax.block_until_ready(jax.tree.leaves(split_model(model)[1]))
    t_create = time.perf_counter() - t0
    placement = make_placement(args.devices if args.devices > 1 else 1)
    fns, params, batch_stats = split_model(model)
    tx = make_optimizer(learning_rate_schedule(1e-3, 100_000, 100), "adamw", 5e-4, model_name=spec.name)
    step = make_train_step(fns, tx, replicated=placement.replicated)
    state = placement.replicate(init_state(params, batch_stats, tx))
    rng = np.random.default_rng(0)
    images = placement.batch(rng.integers(0, 256, (args.batch, *shape), dtype=np.uint8), jnp.float32)
    labels = placement.batch(rng.integers(0, 10, args.batch).astype(np.int32))
    teacher = placement.batch(np.zeros((args.batch, 10), np.float32))
    alpha, temperature, key = placement.replicate((jnp.float32(0.0), jnp.float32(4.0), jax.random.key(0)))
    t0 = time.perf_counter()
    state, metrics = step(state, images, labels, teacher, alpha, temperature, key)
    jax.block_until_ready(metrics)
    t_compile = time.perf_counter() - t0
    out = {"what": args.what, "import_s": t_import, "create_model_s": t_create, "compile_s": t_compile,
           "devices": placement.num_devices, "host_malloc": host_malloc}
    if args.what == "step":
        from tools.benchkit.timing import alternate, repeats_for

        holder = {"state": state}

        usage = {"faults": 0, "sys": 0.0, "wall": 0.0, "steps": 0}

        def jax_steps(n: int) -> float:
            import resource

            before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            st, m = holder["state"], None
            for i in range(n):
                st, m = step(st, images, labels, teacher, alpha, temperature, key)
                if (i + 1) % args.sync_every == 0:  # a bounded queue, as the driver's periodic loss read
                    jax.block_until_ready(m)
            jax.block_until_ready(m)
            holder["state"] = st
            after = resource.getrusage(resource.RUSAGE_SELF)
            usage["faults"] += after.ru_minflt + after.ru_majflt - before.ru_minflt - before.ru_majflt
            usage["sys"] += after.ru_stime - before.ru_stime
            usage["wall"] += time.perf_counter() - t0
            usage["steps"] += n
            return float(n * args.batch)

        n_jax = repeats_for(lambda: jax_steps(1), args.seconds / 4)
        cands = {"jax": lambda: jax_steps(n_jax)}
        if args.torch:
            import os

            import torch

            from tools.benchkit.torch_ref import build_torch_step

            bench = build_torch_step(args.model, spec.size, args.px, args.batch)
            for threads in sorted({1, os.cpu_count() or 1}):
                torch.set_num_threads(threads)
                n_t = repeats_for(lambda b=bench: b.run(1), args.seconds / 4)

                def work(b=bench, t=threads, n=n_t) -> float:
                    torch.set_num_threads(t)
                    return b.run(n)

                cands[f"pytorch {threads}t"] = work
        res = alternate(cands, args.rounds, warmup=1)
        out["rates"] = {k: v.rates for k, v in res.items()}
        out["img_s"] = res["jax"].median
        out["medians"] = {k: v.median for k, v in res.items()}
        out["faults_per_step"] = usage["faults"] / max(usage["steps"], 1)
        out["sys_over_wall"] = usage["sys"] / max(usage["wall"], 1e-9)
    out["total_s"] = time.perf_counter() - T_START
    print(json.dumps(out))


def torchway(args: argparse.Namespace) -> dict:
    from pathlib import Path

    import numpy as np

    from tools.benchkit.step_sections import folder_items
    from tools.benchkit.torch_ref import pytorch_project_lineage, setup_threads

    threads = setup_threads(args.threads)
    root = Path(args.data)
    train, val = folder_items(root, "train"), folder_items(root, "val")
    if args.max_train:
        keep = np.sort(np.random.default_rng(0).permutation(len(train))[:args.max_train])
        train = [train[i] for i in keep]
    t0 = time.perf_counter()
    out = pytorch_project_lineage(train, val, args.px, len({label for _, label in train}), name=args.model,
                                  size=args.size, gens=args.gens, epochs=args.epochs, batch_size=args.batch,
                                  lr=args.lr, log=lambda _: None)
    return {"what": "torchway", "threads": threads, "import_s": t0 - T_START, "train_s": time.perf_counter() - t0,
            "generations": out["generations"], "total_s": time.perf_counter() - T_START}


if __name__ == "__main__":
    main()

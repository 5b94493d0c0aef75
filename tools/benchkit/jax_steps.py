"""The project's real JAX train step, set up for timing, plus prototypes the benchmark compares.

:func:`build_step` drives :func:`rnn_jax.distill.step.make_train_step` exactly as the
generation driver does (split_model, make_optimizer, init_state, the driver's
``TeacherSource`` / ``batch_teacher_logits``). :func:`with_compiler_options` recompiles
that same jitted step with XLA debug options, so flag variants can be timed side by side
in one process. :func:`make_scan_epoch` is a prototype of one jitted ``lax.scan`` over a
whole epoch, for data that fits in memory (augmentation moved onto the device).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.data.types import Split
from rnn_jax.distill.schedules import learning_rate_schedule
from rnn_jax.distill.step import (
    init_state,
    make_forward,
    make_optimizer,
    make_train_step,
    split_model,
)
from rnn_jax.lineage.driver import TeacherSource, batch_teacher_logits
from rnn_jax.models.registry import ModelSpec, count_params, create_model, gflops_per_image
from tools.benchkit.timing import StepBench

TEACHER_MODES = ("none", "cached", "consistent")


def _closure(fn: Callable, name: str) -> Any:
    """A variable captured by ``fn`` (the jitted step inside ``make_train_step``'s wrapper)."""
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    if name not in cells:
        raise RuntimeError(f"make_train_step no longer captures {name!r}; update tools/benchkit/jax_steps.py")
    return cells[name].cell_contents


def step_parts(step: Callable) -> tuple[Any, Any]:
    """(the jitted train step, the RNG template argument) behind ``make_train_step``'s wrapper."""
    return _closure(step, "jitted"), _closure(step, "rng_template")


def _computations(hlo_text: str) -> str:
    """The optimised HLO without source locations (metadata, file and stack-frame tables), so
    two traces of the same computation from different Python code compare equal."""
    lines = hlo_text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith(("%", "ENTRY"))), 0)
    return re.sub(r", metadata=\{[^}]*\}", "", "\n".join(lines[first:]))


def with_compiler_options(step: Callable, example: tuple, options: dict[str, Any]) -> tuple[Callable, str]:
    """The same step compiled with XLA debug options (``--xla_cpu_*`` flags, per compilation).

    ``example`` is ``(state, images, labels, teacher, alpha, temperature, key)``. Returns the
    step and a fingerprint of the optimised program (equal fingerprints: the option changed
    nothing, whatever the timings say).
    """
    import hashlib

    jitted, rng = step_parts(step)
    state, *rest = example
    compiled = jitted.lower(state, rng, *rest).compile(compiler_options=dict(options))
    fingerprint = hashlib.sha256(_computations(compiled.as_text()).encode()).hexdigest()[:12]

    def run(state, *args):
        return compiled(state, rng, *args)

    return run, fingerprint


def random_images(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def build_step(spec: ModelSpec, image_size: int, batch: int, *, classes: int = 10, teacher: str = "none",
               compiler_options: dict[str, Any] | None = None, n_batches: int = 4, seed: int = 0,
               widths: tuple[int, ...] | None = None, flat_optimizer: bool | None = None) -> StepBench:
    """The driver's step on ``n_batches`` pre-staged random batches (rotated), compiled and warmed up.

    ``teacher``: ``none`` (generation 0), ``cached`` (rows of stored logits, the default) or
    ``consistent`` (the teacher's jitted forward on every batch), all via the driver's
    :func:`batch_teacher_logits`.
    """
    import time

    if teacher not in TEACHER_MODES:
        raise ValueError(f"teacher must be one of {TEACHER_MODES}")
    shape = (image_size, image_size, 3)
    if widths is None:
        model = create_model(spec, shape, classes, seed=seed)
    else:  # a width variant of the ResNet preset (channel-width experiment)
        from flax import nnx

        from rnn_jax.models.registry import DTYPES, PRESETS
        from rnn_jax.models.resnet import ResNet

        blocks = PRESETS["resnet"][spec.size]["blocks"]
        model = ResNet(shape, classes, widths, blocks, dtype=DTYPES[spec.dtype],
                       rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    gflops = gflops_per_image(model, shape)
    params_count = count_params(model)
    fns, params, batch_stats = split_model(model)
    tx = make_optimizer(learning_rate_schedule(1e-3, 100_000, 100), "adamw", 5e-4, model_name=spec.name,
                        flat=flat_optimizer)  # None: what the driver does for this model
    step = make_train_step(fns, tx)
    state = init_state(params, batch_stats, tx)

    n = n_batches * batch
    images = [jnp.asarray(random_images(batch, image_size, seed=seed + i), jnp.float32) for i in range(n_batches)]
    labels = [jnp.asarray(np.random.default_rng(seed + i).integers(0, classes, batch), jnp.int32)
              for i in range(n_batches)]
    index = [np.arange(i * batch, (i + 1) * batch) for i in range(n_batches)]
    no_teacher = jnp.zeros((batch, classes), jnp.float32)
    source = TeacherSource(None, None)
    if teacher == "cached":
        source = TeacherSource(np.random.default_rng(seed).normal(size=(n, classes)).astype(np.float32), None)
    elif teacher == "consistent":
        tmodel = create_model(spec, shape, classes, seed=seed + 7) if widths is None else model
        _, tparams, tstats = split_model(tmodel)
        source = TeacherSource(None, make_forward(fns), tparams, tstats)
    alpha = jnp.float32(0.0 if teacher == "none" else 0.7)
    temperature, key = jnp.float32(4.0), jax.random.key(seed)

    t0 = time.perf_counter()
    fingerprint = ""
    if compiler_options is not None:  # {} = default options, compiled the same way (for a fingerprint)
        step, fingerprint = with_compiler_options(
            step, (state, images[0], labels[0], no_teacher, alpha, temperature, key), compiler_options)
    holder = {"state": state}

    def run(steps: int) -> None:
        st, metrics = holder["state"], None
        for i in range(steps):
            j = i % n_batches
            t = batch_teacher_logits(source, index[j], images[j], no_teacher)
            st, metrics = step(st, images[j], labels[j], t, alpha, temperature, key)
        jax.block_until_ready(metrics)
        holder["state"] = st

    run(1)  # compile (and, for consistent, the teacher's forward)
    compile_s = time.perf_counter() - t0
    label = spec.label + (f"[{'-'.join(map(str, widths))}]" if widths else "")
    return StepBench(label, batch, image_size, params_count, gflops, compile_s, run, fingerprint)


# ------------------------------------------------------------------ lax.scan over an epoch
def device_augment(images_u8: jnp.ndarray, key: jax.Array, flip: bool = True) -> jnp.ndarray:
    """``augment="basic"`` on the device: edge-pad by size//8, random crop back, random h-flip."""
    b, h, w, c = images_u8.shape
    pad = max(1, h // 8)
    padded = jnp.pad(images_u8, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    ky, kx, kf = jax.random.split(key, 3)
    ys = jax.random.randint(ky, (b,), 0, 2 * pad + 1)
    xs = jax.random.randint(kx, (b,), 0, 2 * pad + 1)
    out = jax.vmap(lambda img, y, x: jax.lax.dynamic_slice(img, (y, x, 0), (h, w, c)))(padded, ys, xs)
    if flip:
        mask = jax.random.bernoulli(kf, 0.5, (b,))
        out = jnp.where(mask[:, None, None, None], out[:, :, ::-1], out)
    return out


def make_scan_epoch(step: Callable, flip: bool = True) -> Callable:
    """One jitted call per epoch: ``epoch(state, images_u8, labels, teacher, order, alpha, T, key)``.

    ``images_u8`` [N,H,W,C], ``labels`` [N] and ``teacher`` [N,K] live on the device for
    the whole generation; ``order`` [steps, batch] holds the epoch's shuffled indices (drawn
    on the host, as grain does). Each scan iteration gathers its batch, augments it on the
    device and calls the very same jitted train step (inlined by XLA). Returns the new state
    and the summed metrics.
    """
    jitted, rng = step_parts(step)

    def epoch(state, rng_state, images_u8, labels, teacher, order, alpha, temperature, key):
        def body(state, idx):
            x = device_augment(images_u8[idx], jax.random.fold_in(key, state.step), flip)
            state, metrics = jitted(state, rng_state, x.astype(jnp.float32), labels[idx], teacher[idx],
                                    alpha, temperature, key)
            return state, metrics

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(lambda m: m.sum(0), metrics)

    compiled = jax.jit(epoch, donate_argnums=(0,))

    def run(state, images_u8, labels, teacher, order, alpha, temperature, key):
        return compiled(state, rng, images_u8, labels, teacher, order, alpha, temperature, key)

    return run


def build_epoch_runners(spec: ModelSpec, split: Split, batch: int, classes: int, *, augment: str = "basic",
                        flip: bool = True, seed: int = 0, scan: bool = True,
                        prefetch: tuple[int, ...] = ()) -> dict[str, Callable[[], float]]:
    """Ways to train one epoch of ``split`` with the cached teacher; each returns the images trained.

    - ``driver loop``: what :mod:`rnn_jax.lineage.driver` does per epoch: the grain pipeline
      (:func:`train_batches`), the cached teacher rows via :func:`batch_teacher_logits`, one
      jitted step per batch, metric sums on the device, read once at the end;
    - ``staged loop``: the same steps on batches already on the device (no loader, no
      teacher gather): the step's own speed;
    - ``scan epoch`` (``scan=True``): one jitted ``lax.scan`` over the epoch
      (:func:`make_scan_epoch`), data and teacher logits resident on the device;
    - ``driver loop, prefetch N`` for each N in ``prefetch``: the driver loop with grain's
      ``prefetch_threads=N`` (the pipeline's default is 2).

    Every runner trains its own copy of the state (the step donates it).
    """
    from rnn_jax.data.pipeline import epoch_seed, train_batches

    shape = tuple(split.images.shape[1:])
    model = create_model(spec, shape, classes, seed=seed)
    fns, params, batch_stats = split_model(model)
    steps = len(split) // batch
    tx = make_optimizer(learning_rate_schedule(2e-3, steps * 1000, steps // 2), "adamw", 5e-4,
                        model_name=spec.name)
    step = make_train_step(fns, tx)
    cached = np.random.default_rng(seed).normal(size=(len(split), classes)).astype(np.float32)
    source = TeacherSource(cached, None)
    no_teacher = jnp.zeros((batch, classes), jnp.float32)
    alpha, temperature, key = jnp.float32(0.7), jnp.float32(4.0), jax.random.key(seed)

    def fresh_state():
        return init_state(jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, batch_stats), tx)

    states: dict[str, Any] = {}
    epochs = {"n": 0}

    def next_seed() -> int:
        epochs["n"] += 1
        return epoch_seed(seed, 1, epochs["n"])

    def driver_loop(threads: int = 2, slot: str = "driver") -> float:
        st = states.setdefault(slot, fresh_state())
        sums = None
        for b in train_batches(split, batch, next_seed(), augment, flip, prefetch_threads=threads):
            images = jnp.asarray(b["images"], jnp.float32)
            teacher = batch_teacher_logits(source, b["index"], images, no_teacher)
            st, metrics = step(st, images, jnp.asarray(b["labels"]), teacher, alpha, temperature, key)
            sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
        jax.device_get(sums)
        states[slot] = st
        return float(steps * batch)

    staged = [(jnp.asarray(b["images"], jnp.float32), jnp.asarray(b["labels"]), jnp.asarray(cached[b["index"]]))
              for b in train_batches(split, batch, next_seed(), augment, flip)]

    def staged_loop() -> float:
        st, metrics = states.setdefault("staged", fresh_state()), None
        for images, labels, teacher in staged:
            st, metrics = step(st, images, labels, teacher, alpha, temperature, key)
        jax.block_until_ready(metrics)
        states["staged"] = st
        return float(steps * batch)

    runners: dict[str, Callable[[], float]] = {"driver loop": driver_loop, "staged loop": staged_loop}
    for n in prefetch:
        runners[f"driver loop, prefetch {n}"] = lambda n=n: driver_loop(n, f"driver-{n}")
    if scan:
        scan_epoch = make_scan_epoch(step, flip)
        images_dev, labels_dev = jnp.asarray(np.asarray(split.images)), jnp.asarray(split.labels, jnp.int32)
        teacher_dev = jnp.asarray(cached)

        def scan_loop() -> float:
            st = states.setdefault("scan", fresh_state())
            order = np.random.default_rng(next_seed()).permutation(len(split))[:steps * batch]
            st, sums = scan_epoch(st, images_dev, labels_dev, teacher_dev, jnp.asarray(order.reshape(steps, batch)),
                                  alpha, temperature, key)
            jax.device_get(sums)
            states["scan"] = st
            return float(steps * batch)

        runners["scan epoch"] = scan_loop
    return runners

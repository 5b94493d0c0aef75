"""The jitted train step and forward pass, in split/merge functional style.

The teacher is never inside the step: its logits arrive as an input array, produced either
once per generation (``cached``) or by :func:`make_forward` on the same augmented batch
(``consistent``). Generation 0 passes ``alpha = 0`` to the very same compiled step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Sharding

from rnn_jax.distill.hints import HintState, hint_loss
from rnn_jax.distill.losses import deep_supervision_loss, kd_loss
from rnn_jax.distributed import replicate

PyTree = Any


class TrainState(NamedTuple):
    """Everything a step changes; a plain pytree so Orbax saves it and jit donates it."""

    params: PyTree
    batch_stats: PyTree
    opt_state: PyTree
    ema_params: PyTree  # a scalar placeholder when EMA is off
    step: jnp.ndarray
    # FitNets hints: the regressor and its optimizer state (a HintState), else None: no leaves,
    # so the resume checkpoints of runs without hints keep their layout
    hint: PyTree = None


@dataclass(frozen=True)
class ModelFunctions:
    """A model taken apart once: static graph definitions plus the non-trained RNG state."""

    train_graphdef: nnx.GraphDef
    eval_graphdef: nnx.GraphDef
    rng_state: nnx.State


def split_model(model: nnx.Module) -> tuple[ModelFunctions, PyTree, PyTree]:
    """Return (functions, params, batch_stats) for a freshly created model."""
    model.eval()
    eval_graphdef, _, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    model.train()
    train_graphdef, params, batch_stats, rng_state = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    return ModelFunctions(train_graphdef, eval_graphdef, rng_state), params, batch_stats


def merge_eval_model(fns: ModelFunctions, params: PyTree, batch_stats: PyTree) -> nnx.Module:
    """A ready-to-call model in inference mode (for export, inspection, notebooks)."""
    return nnx.merge(fns.eval_graphdef, params, batch_stats, fns.rng_state)


def make_optimizer(lr_schedule: optax.Schedule, kind: str, weight_decay: float, *, model_name: str,
                   flat: bool | None = None) -> optax.GradientTransformation:
    """AdamW or SGD for a model of family ``model_name``, run per leaf or on one raveled vector.

    ``flat=None`` lets :func:`ravel_optimizer_pays` decide from the family; ``True``/``False``
    force it (the benchmark's comparison). The moments are the same numbers in the same order
    either way, so the packed resume checkpoints of both layouts are interchangeable.
    """
    if flat is None:
        flat = ravel_optimizer_pays(model_name)
    if kind == "sgd":
        tx = optax.chain(optax.add_decayed_weights(weight_decay),
                         optax.sgd(lr_schedule, momentum=0.9, nesterov=True))
    else:
        tx = optax.adamw(lr_schedule, weight_decay=weight_decay)
    return optax.flatten(tx) if flat else tx


def ravel_optimizer_pays(model_name: str) -> bool:
    """Whether the optimizer should run on one raveled vector for this model family.

    Measured on XLA:CPU (docs/performance.md): the CIFAR ResNets ("resnet") gain 1.05-1.20x
    per step, their ~190 small per-leaf update kernels becoming a handful; MLPs and ViTs lose
    2-250x, because XLA fuses their bias-gradient reductions into the (slow) concatenation
    that ravels the gradients; ResNet-18/34 are even. So only the "resnet" family ravels.
    """
    return model_name == "resnet"


def init_state(params: PyTree, batch_stats: PyTree, tx: optax.GradientTransformation,
               ema: bool = False, hint_regressor: PyTree | None = None) -> TrainState:
    """``hint_regressor`` (FitNets hints, :func:`rnn_jax.distill.hints.init_regressor`) is trained
    by the same optimizer ``tx``, with its own state."""
    ema_params = jax.tree.map(jnp.copy, params) if ema else jnp.zeros((), jnp.float32)
    hint = None if hint_regressor is None else HintState(hint_regressor, tx.init(hint_regressor))
    return TrainState(params, batch_stats, tx.init(params), ema_params, jnp.zeros((), jnp.int32), hint)


def evaluated_params(state: TrainState, ema: bool) -> PyTree:
    """The weights a generation is judged by: the EMA (mean teacher) when enabled."""
    return state.ema_params if ema else state.params


def make_train_step(fns: ModelFunctions, tx: optax.GradientTransformation, label_smoothing: float = 0.0,
                    ema_decay: float = 0.0, *, replicated: Sharding | None = None, teacher_heads: str = "all",
                    with_predictions: bool = False, hint_weight: float = 0.0):
    """Build ``step(state, images, labels, teacher_logits, alpha, temperature, key) -> (state, metrics)``.

    ``hint_weight`` (FitNets, :mod:`rnn_jax.distill.hints`): a call that also passes
    ``teacher_features`` (the teacher's ``hint_features`` on this batch) adds
    ``hint_weight * MSE(regressor(student features), teacher_features)`` to the loss, trains the
    state's regressor (``init_state(hint_regressor=...)``) and logs the MSE as ``metrics["hint"]``.
    A call without it (generation 0) is the plain step.

    ``with_predictions``: the step returns ``(state, metrics, probabilities)`` instead, the
    student's softmax [B, C] from this very training forward (PS-KD stores them per example,
    :mod:`rnn_jax.distill.progressive`, so they cost no second forward pass).

    ``labels`` are class indices [B] or, for mixed batches (mixup, cutmix), target
    distributions [B, C]; ``teacher_logits`` may be log-probabilities (an ensemble's).

    ``alpha`` and ``temperature`` are traced scalars, so every generation (and every
    temperature schedule) reuses one compilation. ``state`` is donated: no copy per step.
    ``replicated`` (data-parallel runs): the new state and the metrics stay replicated on
    that mesh, so donation reuses the buffers; the batch may arrive sharded.

    Models with deep supervision (a ``supervised_logits`` method, e.g. the TRM) are trained on
    all their heads (:func:`rnn_jax.distill.losses.deep_supervision_loss`); ``teacher_heads``
    says which of them the teacher's soft targets reach ("all" or "final"). Accuracy is counted
    on the last head, the one inference uses.
    """

    def loss_fn(params, regressor, batch_stats, rng_state, images, labels, teacher_logits, alpha, temperature,
                teacher_features):
        # rebuild the mutable variables at this trace level (BatchNorm and dropout update them)
        batch_stats, rng_state = jax.tree.map(lambda leaf: leaf, (batch_stats, rng_state))
        model = nnx.merge(fns.train_graphdef, params, batch_stats, rng_state)
        if teacher_features is not None:  # FitNets: the guided layer regresses the teacher's hint
            features, logits = model.features_and_logits(images)
            loss, parts = kd_loss(logits, labels, teacher_logits, alpha, temperature, label_smoothing)
            hint = hint_loss(features, teacher_features, regressor)
            loss, parts = loss + hint_weight * hint, {**parts, "hint": hint}
        elif hasattr(model, "supervised_logits"):  # deep supervision: every head gets a loss
            heads = model.supervised_logits(images)
            logits = heads[-1]
            loss, parts = deep_supervision_loss(heads, model.head_weights(), labels, teacher_logits, alpha,
                                                temperature, label_smoothing, teacher_heads)
        else:
            logits = model(images)
            loss, parts = kd_loss(logits, labels, teacher_logits, alpha, temperature, label_smoothing)
        new_batch_stats = nnx.state(model, nnx.BatchStat)
        return loss, (logits, new_batch_stats, parts)

    def train_step(state: TrainState, rng_state, images, labels, teacher_logits, alpha, temperature, key,
                   teacher_features=None):
        # fresh dropout / stochastic-depth randomness per step, derived from (key, step)
        seeded = nnx.merge(fns.train_graphdef, state.params, state.batch_stats, rng_state)
        nnx.reseed(seeded, dropout=jax.random.fold_in(key, state.step))
        rng_state = nnx.state(seeded, nnx.RngState)
        hinted = teacher_features is not None
        regressor = state.hint.params if hinted else None
        (grads, regressor_grads), (logits, batch_stats, parts) = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)(
            state.params, regressor, state.batch_stats, rng_state, images, labels, teacher_logits, alpha,
            temperature, teacher_features)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        hint_state = state.hint
        if hinted:
            regressor_updates, regressor_opt = tx.update(regressor_grads, state.hint.opt_state, regressor)
            hint_state = HintState(optax.apply_updates(regressor, regressor_updates), regressor_opt)
        ema = (optax.incremental_update(params, state.ema_params, 1.0 - ema_decay)
               if ema_decay > 0 else state.ema_params)
        alpha32 = jnp.asarray(alpha, jnp.float32)
        metrics = {
            "loss": alpha32 * parts["kl"] + (1 - alpha32) * parts["ce"],
            "ce": parts["ce"],
            "kl": parts["kl"],
            "correct": jnp.sum(jnp.argmax(logits, -1) == (labels if labels.ndim == 1 else jnp.argmax(labels, -1))),
        }
        if hinted:
            metrics["hint"] = parts["hint"]
            metrics["loss"] = metrics["loss"] + hint_weight * parts["hint"]
        new_state = TrainState(params, batch_stats, opt_state, ema, state.step + 1, hint_state)
        if with_predictions:
            return new_state, metrics, jax.nn.softmax(logits.astype(jnp.float32))
        return new_state, metrics

    if replicated is None:
        jitted = jax.jit(train_step, donate_argnums=(0,))
    else:
        jitted = jax.jit(train_step, donate_argnums=(0,), out_shardings=replicated)
    rng_template = replicate(fns.rng_state, replicated)

    def step(state: TrainState, images, labels, teacher_logits, alpha, temperature, key, teacher_features=None):
        # the RNG template is an argument, not a closure constant: NNX refuses to mutate
        # variables that were created outside the trace
        if teacher_features is None:
            return jitted(state, rng_template, images, labels, teacher_logits, alpha, temperature, key)
        if hint_weight <= 0 or state.hint is None:
            raise ValueError("teacher_features need a step built with hint_weight > 0 and a state with a "
                             "hint regressor (init_state(hint_regressor=...))")
        return jitted(state, rng_template, images, labels, teacher_logits, alpha, temperature, key,
                      teacher_features)

    return step


def make_forward(fns: ModelFunctions, *, replicated: Sharding | None = None,
                 out_sharding: Sharding | None = None, method: str | None = None):
    """Jitted inference ``forward(params, batch_stats, images) -> logits`` (eval mode).

    ``method``: call this model method instead (``"hint_features"``: a FitNets teacher's hint).

    Data-parallel runs: the weights live on ``replicated``; the logits go to ``out_sharding``
    (default: replicated, so every process can read all of them; the ``consistent`` teacher
    passes the batch sharding instead, so its logits feed the step without a gather).
    """

    def apply(params, batch_stats, rng_state, images):
        model = nnx.merge(fns.eval_graphdef, params, batch_stats, rng_state)
        return (model if method is None else getattr(model, method))(images)

    if replicated is None:
        forward_jit = jax.jit(apply)
    else:
        forward_jit = jax.jit(apply, out_shardings=out_sharding or replicated)
    rng_template = replicate(fns.rng_state, replicated)

    def forward(params, batch_stats, images):
        return forward_jit(params, batch_stats, rng_template, images)

    return forward

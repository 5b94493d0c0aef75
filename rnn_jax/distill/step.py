"""The jitted train step and forward pass, in split/merge functional style.

The teacher is never inside the step: its logits arrive as an input array, produced either
once per generation (``cached``) or by :func:`make_forward` on the same augmented batch
(``consistent``). Generation 0 passes ``alpha = 0`` to the very same compiled step. The loss is
an :class:`rnn_jax.distill.objective.Objective` whose terms are picked when the step is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Sharding

from rnn_jax.distill.deep_supervision import (
    deep_supervision_term,
    has_deep_supervision,
    heads_forward,
)
from rnn_jax.distill.hints import HintState, features_forward, hint_term, update_regressor
from rnn_jax.distill.kd import kd_term, logits_forward
from rnn_jax.distill.objective import Batch, Objective
from rnn_jax.distill.progressive import predictions
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
    deep_supervision: bool = False  # the model trains all its heads (rnn_jax.distill.deep_supervision)


def split_model(model: nnx.Module) -> tuple[ModelFunctions, PyTree, PyTree]:
    """Return (functions, params, batch_stats) for a freshly created model."""
    model.eval()
    eval_graphdef, _, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    model.train()
    train_graphdef, params, batch_stats, rng_state = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    fns = ModelFunctions(train_graphdef, eval_graphdef, rng_state, has_deep_supervision(model))
    return fns, params, batch_stats


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
    """Build ``step(state, images, labels, teacher_logits, alpha, temperature, key[, teacher_features])
    -> (state, metrics[, probabilities])``.

    The loss terms are chosen here, from the model and the arguments (:func:`_objective`).
    ``alpha`` and ``temperature`` are traced, so every generation shares one compilation; ``state``
    is donated. ``replicated`` (data-parallel): the new state and metrics stay on that mesh.
    ``with_predictions``: also return the student's softmax (PS-KD). ``hint_weight > 0``: a call
    with ``teacher_features`` runs the FitNets step; a call without it (generation 0) the plain one.
    """
    jitted = _jit(_train_step(fns, tx, _objective(fns, label_smoothing, teacher_heads), ema_decay,
                              with_predictions), replicated)
    hinted = None
    if hint_weight > 0:
        hinted = _jit(_train_step(fns, tx, _objective(fns, label_smoothing, teacher_heads, hint_weight), ema_decay,
                                  with_predictions, hinted=True), replicated)
    rng_template = replicate(fns.rng_state, replicated)

    def step(state: TrainState, images, labels, teacher_logits, alpha, temperature, key, teacher_features=None):
        # the RNG template is an argument, not a closure constant: NNX refuses to mutate
        # variables that were created outside the trace
        if teacher_features is None:
            return jitted(state, rng_template, images, labels, teacher_logits, alpha, temperature, key)
        if hinted is None or state.hint is None:
            raise ValueError("teacher_features need a step built with hint_weight > 0 and a state with a "
                             "hint regressor (init_state(hint_regressor=...))")
        return hinted(state, rng_template, images, labels, teacher_logits, alpha, temperature, key,
                      teacher_features)

    return step


def _objective(fns: ModelFunctions, label_smoothing: float, teacher_heads: str,
               hint_weight: float = 0.0) -> Objective:
    """The forward and loss terms of a step: KD + CE plus the FitNets hint when ``hint_weight`` is
    given, deep supervision for models with several heads, else KD + CE on the logits."""
    if hint_weight > 0:
        return Objective(features_forward, (kd_term(label_smoothing), hint_term(hint_weight)))
    if fns.deep_supervision:
        return Objective(heads_forward, (deep_supervision_term(label_smoothing, teacher_heads),))
    return Objective(logits_forward, (kd_term(label_smoothing),))


def _train_step(fns: ModelFunctions, tx: optax.GradientTransformation, objective: Objective, ema_decay: float,
                with_predictions: bool, hinted: bool = False) -> Callable:
    """The function to jit: one optimizer step on ``objective`` (and on the hint's regressor)."""
    advance_hint = partial(update_regressor, tx) if hinted else _keep
    advance_ema = partial(_ema_update, ema_decay) if ema_decay > 0 else _keep
    finish = _with_predictions if with_predictions else _without_predictions

    def loss_fn(params, regressor, batch_stats, rng_state, batch: Batch):
        # rebuild the mutable variables at this trace level (BatchNorm and dropout update them)
        batch_stats, rng_state = jax.tree.map(lambda leaf: leaf, (batch_stats, rng_state))
        model = nnx.merge(fns.train_graphdef, params, batch_stats, rng_state)
        loss, outputs, parts = objective(model, batch, regressor)
        return loss, (outputs.logits, nnx.state(model, nnx.BatchStat), parts)

    def train_step(state: TrainState, rng_state, images, labels, teacher_logits, alpha, temperature, key,
                   teacher_features=None):
        # fresh dropout / stochastic-depth randomness per step, derived from (key, step)
        seeded = nnx.merge(fns.train_graphdef, state.params, state.batch_stats, rng_state)
        nnx.reseed(seeded, dropout=jax.random.fold_in(key, state.step))
        rng_state = nnx.state(seeded, nnx.RngState)
        batch = Batch(images, labels, teacher_logits, alpha, temperature, teacher_features)
        regressor = state.hint.params if hinted else None
        (loss, (logits, batch_stats, parts)), (grads, regressor_grads) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True)(state.params, regressor, state.batch_stats, rng_state, batch)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(params, batch_stats, opt_state, advance_ema(state.ema_params, params),
                               state.step + 1, advance_hint(state.hint, regressor_grads))
        metrics = {"loss": loss, **parts, "correct": _correct(logits, labels)}
        return finish(new_state, metrics, logits)

    return train_step


def _jit(train_step: Callable, replicated: Sharding | None) -> Callable:
    if replicated is None:
        return jax.jit(train_step, donate_argnums=(0,))
    return jax.jit(train_step, donate_argnums=(0,), out_shardings=replicated)


def _keep(current: PyTree, _update: PyTree) -> PyTree:
    return current


def _ema_update(decay: float, ema_params: PyTree, params: PyTree) -> PyTree:
    """The mean teacher: ``decay * ema + (1 - decay) * params``."""
    return optax.incremental_update(params, ema_params, 1.0 - decay)


def _correct(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """How many argmaxes hit the label (the target's argmax for mixed batches)."""
    return jnp.sum(jnp.argmax(logits, -1) == (labels if labels.ndim == 1 else jnp.argmax(labels, -1)))


def _with_predictions(state: TrainState, metrics: dict, logits: jnp.ndarray) -> tuple:
    return state, metrics, predictions(logits)


def _without_predictions(state: TrainState, metrics: dict, logits: jnp.ndarray) -> tuple:
    return state, metrics


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

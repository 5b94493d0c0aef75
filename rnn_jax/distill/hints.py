"""FitNets-style feature hints (Romero et al., ICLR 2015): pure functions, no models.

The student regresses the teacher's intermediate feature map (the *hint*) from its own feature
map at the same layer (the *guided layer*) through a learned 1x1 convolution, the *regressor*;
the hint loss is their mean squared error. Teacher and student share the architecture in
born-again distillation, so the shapes already agree: the regressor starts as the identity and
learns only the linear map (e.g. a channel permutation: two networks from different seeds need
not order their channels alike) that a fixed identity would force the student to adopt.

The regressor is a training device, not part of the model: it lives in the train state
(:class:`rnn_jax.distill.step.TrainState` ``hint``), never in the weights that are saved as
"best", evaluated or exported.

The whole variant is this module: the regressor, the loss, the forward and term the step adds
(:mod:`rnn_jax.distill.objective`), and the regressor's update. The study screened it within noise
(docs/distillation.md, row H); it stays, whole in one module, so ``--hint-weight`` keeps working
and costs nothing at 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from rnn_jax.distill.objective import Batch, Outputs, Parts, Term


class HintState(NamedTuple):
    """The regressor's weights and its optimizer state (same optimizer as the model's)."""

    params: dict
    opt_state: object


def init_regressor(channels: int) -> dict[str, jnp.ndarray]:
    """A 1x1 convolution ``channels -> channels`` that starts as the identity (zero bias)."""
    return {"kernel": jnp.eye(channels, dtype=jnp.float32), "bias": jnp.zeros((channels,), jnp.float32)}


def apply_regressor(regressor: dict[str, jnp.ndarray], features: jnp.ndarray) -> jnp.ndarray:
    """The 1x1 convolution on an NHWC feature map, in float32."""
    return jnp.einsum("...c,cd->...d", features.astype(jnp.float32), regressor["kernel"]) + regressor["bias"]


def hint_loss(student_features: jnp.ndarray, teacher_features: jnp.ndarray,
              regressor: dict[str, jnp.ndarray]) -> jnp.ndarray:
    """Mean squared error between the regressed student features and the teacher's (per element)."""
    diff = apply_regressor(regressor, student_features) - teacher_features.astype(jnp.float32)
    return jnp.mean(jnp.square(diff))


def features_forward(model: Any, images: jnp.ndarray) -> Outputs:
    """The forward of a model with a guided layer: its feature map and its logits, in one pass."""
    features, logits = model.features_and_logits(images)
    return Outputs(logits, features=features)


def hint_term(weight: float) -> Term:
    """``weight * MSE(regressor(student features), teacher features)``; logs the MSE as ``hint``.
    The term's ``extra`` weights are the regressor."""

    def term(outputs: Outputs, batch: Batch, regressor: dict[str, jnp.ndarray]) -> tuple[jnp.ndarray, Parts]:
        hint = hint_loss(outputs.features, batch.teacher_features, regressor)
        return weight * hint, {"hint": hint}

    return term


def update_regressor(tx: optax.GradientTransformation, hint: HintState, grads: dict) -> HintState:
    """One optimizer step of the regressor (the model's optimizer, the regressor's own state)."""
    updates, opt_state = tx.update(grads, hint.opt_state, hint.params)
    return HintState(optax.apply_updates(hint.params, updates), opt_state)

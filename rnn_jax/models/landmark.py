"""Landmark gesture models: a per-frame MLP, a stacked LSTM, and the stateful tiny recursive
model (TRM).

Every model reads features [B, T, 21, 3] (:mod:`rnn_jax.hands.features`; T = 1 for photos)
and has one per-frame interface, the one exported to ONNX and run live:

    logits, new_state = model.step(frame [B, 21, 3], state [B, state_size])

``__call__`` runs ``step`` over the T frames from a zero state and returns the last frame's
logits, so photos (T = 1) train the recurrent models on single frames and sequences train
them by back-propagation through time over the window. The MLP has no state
(``state_size == 0``; its ``step`` ignores the state).

TRM (after Jolicoeur-Martineau, "Less is More: Recursive Reasoning with Tiny Networks",
2025, made stateful across frames): an input projection e; a learned gate mixes the previous
frame's answer state into the starting answer y; a latent block refines z n times from
(e, y, z) and a deep block refines y from (y, z), the pair repeated T_deep times, each update
a residual (skip) connection; a shared head reads y after every deep iteration. Those
T_deep logits feed the deep supervision loss  sum_t lambda^(T_deep - t) * loss(logits_t)
(:func:`rnn_jax.distill.losses.deep_supervision_loss`); inference uses the last one. The
state carried to the next frame is (y, z), each layer-normalised (bounded across frames).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

FEATURES = 21 * 3


def _frames(x: jnp.ndarray) -> jnp.ndarray:
    """[B, T, 21, 3] (or [B, 21, 3]) -> [B, T, 63] float32."""
    x = jnp.asarray(x, jnp.float32)
    if x.ndim == 3:
        x = x[:, None]
    return x.reshape(x.shape[0], x.shape[1], -1)


class _Recurrent(nnx.Module):
    """Shared scan over frames: ``__call__`` and ``frame_logits``."""

    state_size: int = 0

    def initial_state(self, batch: int) -> jnp.ndarray:
        return jnp.zeros((batch, self.state_size), jnp.float32)

    def frame_logits(self, x: jnp.ndarray, state: jnp.ndarray | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Logits of every frame [B, T, C] and the final state, stepping from ``state`` (zeros)."""
        frames = _frames(x)
        state = self.initial_state(frames.shape[0]) if state is None else state
        out = []
        for t in range(frames.shape[1]):  # windows are short: an unrolled loop exports and compiles simply
            logits, state = self.step(frames[:, t], state)
            out.append(logits)
        return jnp.stack(out, 1), state

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.frame_logits(x)[0][:, -1]


class LandmarkMLP(_Recurrent):
    """Per-frame MLP over the 63 feature numbers (no state): the baseline."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...], *,
                 dropout: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        sizes = (FEATURES, *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in sizes[1:]])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(sizes[-1], num_classes, dtype=dtype, rngs=rngs)

    def step(self, frame: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        h = jnp.asarray(frame, jnp.float32).reshape(frame.shape[0], -1)
        for layer, norm in zip(self.layers, self.norms):
            h = nnx.gelu(norm(layer(h)))
        return self.head(self.dropout(h)).astype(jnp.float32), state


class LandmarkLSTM(_Recurrent):
    """Stacked LSTM over frames; the state is every layer's (h, c), flattened to [B, 2 * L * H]."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int, layers: int, *,
                 dropout: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        self.hidden, self.num_layers = hidden, layers
        self.state_size = 2 * layers * hidden
        self.embed = nnx.Linear(FEATURES, hidden, dtype=dtype, rngs=rngs)
        self.gates_x = nnx.List([nnx.Linear(hidden, 4 * hidden, dtype=dtype, rngs=rngs) for _ in range(layers)])
        self.gates_h = nnx.List([nnx.Linear(hidden, 4 * hidden, use_bias=False, dtype=dtype, rngs=rngs)
                                 for _ in range(layers)])
        for g in self.gates_x:  # forget-gate bias 1: remember by default (Jozefowicz et al. 2015)
            g.bias[...] = g.bias[...].at[hidden:2 * hidden].set(1.0)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(hidden, num_classes, dtype=dtype, rngs=rngs)

    def step(self, frame: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        b, h = frame.shape[0], self.hidden
        hs = state.reshape(b, self.num_layers, 2, h)
        x = nnx.gelu(self.embed(jnp.asarray(frame, jnp.float32).reshape(b, -1)))
        new = []
        for i in range(self.num_layers):
            h_prev, c_prev = hs[:, i, 0], hs[:, i, 1]
            i_g, f_g, g_g, o_g = jnp.split(self.gates_x[i](x) + self.gates_h[i](h_prev), 4, axis=-1)
            c = jax.nn.sigmoid(f_g) * c_prev + jax.nn.sigmoid(i_g) * jnp.tanh(g_g)
            x = jax.nn.sigmoid(o_g) * jnp.tanh(c)
            new.append(jnp.stack([x, c], 1))
        logits = self.head(self.dropout(x)).astype(jnp.float32)
        return logits, jnp.stack(new, 1).reshape(b, self.state_size)


class _Block(nnx.Module):
    """Pre-norm residual MLP block (the TRM's one reusable network)."""

    def __init__(self, dim_in: int, dim: int, *, dtype, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim_in, rngs=rngs)
        self.up = nnx.Linear(dim_in, 2 * dim, dtype=dtype, rngs=rngs)
        self.down = nnx.Linear(2 * dim, dim, dtype=dtype, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.down(nnx.gelu(self.up(self.norm(x))))


class LandmarkTRM(_Recurrent):
    """Stateful tiny recursive model with deep supervision (see the module docstring)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, dim: int, latent_steps: int = 6,
                 deep_steps: int = 3, ds_lambda: float = 0.9, *, loss_frames: tuple[int, ...] = (),
                 dropout: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dim, self.latent_steps, self.deep_steps, self.ds_lambda = dim, latent_steps, deep_steps, ds_lambda
        # training streams (rnn_jax.data.streams): the frames of a window that carry the loss
        # (empty: the last frame only). A static tuple: part of the graph, not a parameter.
        self.loss_frames = tuple(int(i) for i in loss_frames)
        self.state_size = 2 * dim
        self.project = nnx.Linear(FEATURES, dim, dtype=dtype, rngs=rngs)
        self.project_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.gate = nnx.Linear(3 * dim, 2 * dim, dtype=dtype, rngs=rngs)
        self.latent = _Block(3 * dim, dim, dtype=dtype, rngs=rngs)
        self.deep = _Block(2 * dim, dim, dtype=dtype, rngs=rngs)
        self.out_norm = nnx.LayerNorm(dim, rngs=rngs)
        # the carried state is normalised: residual updates would otherwise let it grow frame
        # after frame (measured: |state| ~2,000 after 64 frames, and float32 drift with it)
        self.carry_norm = nnx.LayerNorm(dim, use_scale=False, use_bias=False, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, dtype=dtype, rngs=rngs)

    def heads_step(self, frame: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Logits of every deep iteration [deep_steps, B, C] and the new state [B, 2 * dim]."""
        b, d = frame.shape[0], self.dim
        e = self.project_norm(self.project(jnp.asarray(frame, jnp.float32).reshape(b, -1)))
        y_prev, z_prev = state[:, :d], state[:, d:]
        # the gate decides, per unit, how much of the previous frame's (y, z) to keep
        g = jax.nn.sigmoid(self.gate(jnp.concatenate([e, y_prev, z_prev], -1)))
        y = g[:, :d] * y_prev + (1 - g[:, :d]) * e
        z = g[:, d:] * z_prev
        heads = []
        for _ in range(self.deep_steps):
            for _ in range(self.latent_steps):
                z = z + self.latent(jnp.concatenate([e, y, z], -1))
            y = y + self.deep(jnp.concatenate([y, z], -1))
            heads.append(self.head(self.dropout(self.out_norm(y))).astype(jnp.float32))
        return jnp.stack(heads), jnp.concatenate([self.carry_norm(y), self.carry_norm(z)], -1)

    def step(self, frame: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        heads, state = self.heads_step(frame, state)
        return heads[-1], state

    def supervised_logits(self, x: jnp.ndarray) -> jnp.ndarray:
        """Deep-supervision logits [deep_steps, B, C] of the last frame (the train step's loss).

        With ``loss_frames`` (training streams): the heads of each of those frames, in frame
        order, [len(loss_frames) * deep_steps, B, C]; the last frame's are last."""
        frames = _frames(x)
        n = frames.shape[1]
        if not self.loss_frames:
            state = self.initial_state(frames.shape[0])
            for t in range(n - 1):
                _, state = self.step(frames[:, t], state)
            return self.heads_step(frames[:, -1], state)[0]
        if max(self.loss_frames) != n - 1 or min(self.loss_frames) < 0:
            raise ValueError(f"loss_frames {list(self.loss_frames)} must lie in a window of {n} frames and end "
                             "with its last frame")
        heads, _ = self._scan(frames, self.initial_state(frames.shape[0]))
        picked = heads[jnp.asarray(sorted(self.loss_frames))]  # [F, deep_steps, B, C]
        return picked.reshape(-1, *picked.shape[2:])

    def _scan(self, frames: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Every frame's heads [T, deep_steps, B, C] and the final state, by a scan over the frames:
        a stream window's 31 frames x 18 block passes (and their gradients) unrolled take XLA
        minutes to compile."""
        graphdef, variables = nnx.split(self)

        def body(carry, frame):
            heads, carry = nnx.merge(graphdef, variables).heads_step(frame, carry)
            return carry, heads

        state, heads = jax.lax.scan(body, state, jnp.swapaxes(frames, 0, 1))
        return heads, state

    def frame_logits(self, x: jnp.ndarray, state: jnp.ndarray | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
        if not self.loss_frames:  # the unrolled loop of single photos and short windows
            return super().frame_logits(x, state)
        frames = _frames(x)  # a model trained on streams sees long windows: scanned
        state = self.initial_state(frames.shape[0]) if state is None else state
        heads, state = self._scan(frames, state)
        return jnp.swapaxes(heads[:, -1], 0, 1), state

    def head_weights(self) -> jnp.ndarray:
        """lambda^(T - t) for t = 1..T: the last head weighs 1, earlier ones less. With
        ``loss_frames``: those weights for each frame, divided by the number of frames (a mean)."""
        t = jnp.arange(1, self.deep_steps + 1, dtype=jnp.float32)
        w = jnp.float32(self.ds_lambda) ** (self.deep_steps - t)
        k = max(1, len(self.loss_frames))
        return jnp.tile(w, k) / k

"""The motion window model: dynamic gestures from the last ``window`` frames of motion features.

Why a window and not an unbounded recurrent state: a swipe or a circle lasts well under a
second, so the model needs the last ~0.8 s and nothing older. Its state is exactly that: the
embeddings of the last ``window - 1`` frames, shifted by one each frame (a ring buffer written
as a shift, so the exported ONNX step is plain tensor ops). Offline on a window and live frame
by frame after any history are then the same computation (parity is exact by construction,
and there is no "state trained only from zero" gap), and the hand's first frames see zeros
where no frame was, as in training.

    embed:  frame [B, 21, 3] -> gelu(Linear(63 -> E)), x 0 for an all-zero (absent) frame
    step:   buffer [B, (W - 1) * E] + this frame's embedding -> window [B, W * E]
            -> (Linear -> LayerNorm -> gelu) x len(hidden) -> logits; new buffer = window[1:]
    __call__ on [B, T, 21, 3]: embeds every frame at once and reads the last W (zeros before
            frame 0), the same as T steps from a zero buffer.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

FEATURES = 21 * 3


class MotionWindow(nnx.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, window: int, embed: int,
                 hidden: tuple[int, ...], *, dropout: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        self.window, self.embed_dim = window, embed
        self.state_size = (window - 1) * embed
        self.embed = nnx.Linear(FEATURES, embed, dtype=dtype, rngs=rngs)
        sizes = (window * embed, *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in sizes[1:]])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(sizes[-1], num_classes, dtype=dtype, rngs=rngs)

    def initial_state(self, batch: int) -> jnp.ndarray:
        return jnp.zeros((batch, self.state_size), jnp.float32)

    def _embed(self, frames: jnp.ndarray) -> jnp.ndarray:
        """[..., 63] -> [..., E]; an absent (all-zero) frame embeds to zeros, like the empty buffer."""
        present = (jnp.abs(frames).sum(-1, keepdims=True) > 0).astype(jnp.float32)
        return nnx.gelu(self.embed(frames)) * present

    def _classify(self, window: jnp.ndarray) -> jnp.ndarray:
        h = window.reshape(window.shape[0], -1)
        for layer, norm in zip(self.layers, self.norms):
            h = nnx.gelu(norm(layer(h)))
        return self.head(self.dropout(h)).astype(jnp.float32)

    def step(self, frame: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        b = frame.shape[0]
        e = self._embed(jnp.asarray(frame, jnp.float32).reshape(b, FEATURES))
        window = jnp.concatenate([state.reshape(b, self.window - 1, self.embed_dim), e[:, None]], 1)
        return self._classify(window), window[:, 1:].reshape(b, self.state_size)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = jnp.asarray(x, jnp.float32)
        if x.ndim == 3:
            x = x[:, None]
        b, t = x.shape[:2]
        e = self._embed(x.reshape(b, t, FEATURES))
        if t < self.window:
            e = jnp.concatenate([jnp.zeros((b, self.window - t, self.embed_dim), e.dtype), e], 1)
        return self._classify(e[:, -self.window:])

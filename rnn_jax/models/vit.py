"""A small patch ViT (mean-pooled tokens, pre-norm blocks) built from plain ops jax2onnx covers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from rnn_jax.models.layers import DropPath, normalize_pixels


class Attention(nnx.Module):
    def __init__(self, dim: int, heads: int, dtype, rngs: nnx.Rngs):
        if dim % heads:
            raise ValueError(f"ViT width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nnx.Linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
        self.out = nnx.Linear(dim, dim, dtype=dtype, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        b, n, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads), 3, axis=2)
        q, k, v = (t[:, :, 0] for t in (q, k, v))  # (b, n, heads, dh)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(d // self.heads, x.dtype))
        weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(x.dtype)
        return self.out(jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, d))


class EncoderBlock(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, drop_path: float, dropout: float,
                 dtype, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
        self.attn = Attention(dim, heads, dtype, rngs)
        self.norm2 = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
        self.fc1 = nnx.Linear(dim, dim * mlp_ratio, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(dim * mlp_ratio, dim, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.drop_path = DropPath(drop_path, 3, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        y = self.fc2(self.dropout(nnx.gelu(self.fc1(self.norm2(x)), approximate=True)))
        return x + self.drop_path(y)


class ViT(nnx.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, dim: int, depth: int,
                 heads: int, *, patch: int | None = None, mlp_ratio: int = 2, dropout: float = 0.0,
                 stochastic_depth: float = 0.0, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dtype = dtype
        size = image_shape[0]
        patch = patch or max(1, size // 8)  # ~64 tokens whatever the input size
        if size % patch:
            raise ValueError(f"image size {size} is not divisible by the ViT patch size {patch}")
        tokens = (size // patch) ** 2
        self.embed = nnx.Conv(image_shape[2], dim, (patch, patch), strides=(patch, patch),
                              padding="VALID", dtype=dtype, rngs=rngs)
        self.pos = nnx.Param(jax.random.normal(rngs.params(), (1, tokens, dim)) * 0.02)
        self.blocks = nnx.List([
            EncoderBlock(dim, heads, mlp_ratio, stochastic_depth * i / max(depth - 1, 1), dropout, dtype, rngs)
            for i in range(depth)
        ])
        self.norm = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = self.embed(normalize_pixels(x, self.dtype))
        x = x.reshape(x.shape[0], -1, x.shape[-1]) + self.pos[...].astype(self.dtype)
        for block in self.blocks:
            x = block(x)
        return self.head(jnp.mean(self.norm(x), axis=1)).astype(jnp.float32)

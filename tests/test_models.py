import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from rnn_jax.models.registry import (
    LANDMARK_MODELS,
    ModelSpec,
    count_params,
    create_model,
    list_models,
    model_spec,
)

# image models (landmark models take [B, T, 21, 3]: tests/test_landmarks.py)
SMALL = [(n, s) for n, s in list_models() if s in ("tiny", "default") and n not in LANDMARK_MODELS]


@pytest.mark.parametrize(("name", "size"), SMALL)
def test_every_model_maps_images_to_logits(name, size):
    shape = (16, 16, 3)
    model = create_model(ModelSpec(name, size if size != "default" else "default"), shape, 5, seed=0)
    model.eval()
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (2, *shape)), jnp.float32)
    logits = model(x)
    assert logits.shape == (2, 5) and logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    assert count_params(model) > 0


def test_same_seed_same_init_different_seed_different_init():
    spec, shape = ModelSpec("resnet", "tiny"), (8, 8, 1)
    a, b, c = (create_model(spec, shape, 3, seed=s) for s in (1, 1, 2))
    leaves = [jax.tree.leaves(nnx.state(m, nnx.Param)) for m in (a, b, c)]
    assert all(bool(jnp.all(x == y)) for x, y in zip(leaves[0], leaves[1]))
    assert not all(bool(jnp.all(x == y)) for x, y in zip(leaves[0], leaves[2]))


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_stochastic_depth_and_dropout_are_noise_in_training_only(name):
    spec, shape = ModelSpec(name, "tiny", dropout=0.5, stochastic_depth=0.5), (16, 16, 3)
    model = create_model(spec, shape, 4, seed=0)
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (4, *shape)), jnp.float32)
    model.eval()
    assert bool(jnp.all(model(x) == model(x)))
    model.train()
    assert not bool(jnp.all(model(x) == model(x)))


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = create_model(ModelSpec("resnet", "tiny", dtype="bfloat16"), (8, 8, 3), 3)
    assert {p.dtype for p in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}
    model.eval()
    assert model(jnp.zeros((1, 8, 8, 3))).dtype == jnp.float32


def test_model_spec_gives_fixed_size_models_their_default_size():
    assert model_spec("resnet18", "small").size == "default"
    assert model_spec("resnet", "medium").label == "resnet-medium"


def test_cnn_pooling_equals_flax_max_pool_on_even_and_odd_sides():
    from rnn_jax.models.cnn import max_pool_2x2

    for side in (8, 9):
        x = jnp.asarray(np.random.default_rng(side).normal(size=(2, side, side, 3)), jnp.float32)
        expected = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")
        np.testing.assert_array_equal(np.asarray(max_pool_2x2(x)), np.asarray(expected))


def test_cnn_refuses_stochastic_depth():
    from rnn_jax.errors import ConfigError

    with pytest.raises(ConfigError, match="residual"):
        ModelSpec("cnn", "tiny", stochastic_depth=0.1)

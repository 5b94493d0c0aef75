"""The oneDNN convolution kernel: same numbers as XLA's convolution, clean fallbacks, clear errors."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from rnn_jax.errors import ConfigError
from rnn_jax.kernels import build as kernel_build
from rnn_jax.kernels import conv as kernel_conv
from rnn_jax.kernels.build import KernelStatus
from rnn_jax.kernels.conv import conv_function, onednn_conv_general_dilated

LAYOUT = ("NHWC", "HWIO", "NHWC")


def _status() -> KernelStatus:
    return kernel_build.load()


# Skip only where the build's own check says its toolchain is missing (not Linux x86-64, no oneDNN
# wheel, no compiler among $CXX, c++, g++, clang++). Where the toolchain is there, a failing build
# fails these tests (fixture below), never skips them.
_MISSING = kernel_build.toolchain_missing()


@pytest.fixture
def built_kernel() -> KernelStatus:
    status = _status()
    assert status.available, f"the toolchain is here but the kernel did not build: {status.reason}"
    return status


def needs_kernel(test):
    """Skip where the toolchain is missing; elsewhere run on a built kernel or fail."""
    test = pytest.mark.usefixtures("built_kernel")(test)
    return pytest.mark.skipif(_MISSING is not None, reason=f"oneDNN kernel toolchain missing here: {_MISSING}")(test)


def test_kernel_builds_wherever_its_toolchain_is_installed():
    # Guards the speed-up: with the [train] extra and a compiler present, a silent fallback to XLA
    # would pass every other test while losing the kernel.
    if _MISSING is not None:
        pytest.skip(_MISSING)
    status = _status()
    assert status.available, status.reason
    assert status.library is not None and status.library.is_file()


@pytest.mark.parametrize("name", [*kernel_build.COMPILERS, "$CXX"])
def test_the_guard_accepts_every_compiler_the_build_accepts(monkeypatch, name):
    """Only one compiler on the PATH (or only the one $CXX names): the build finds it, so the
    guard above must not skip."""
    only = "my-cxx" if name == "$CXX" else name
    if name == "$CXX":
        monkeypatch.setenv("CXX", only)
    else:
        monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(kernel_build.shutil, "which", lambda n: f"/opt/bin/{n}" if n == only else None)
    assert kernel_build._compiler() == f"/opt/bin/{only}"
    monkeypatch.setattr(kernel_build.shutil, "which", lambda n: None)
    assert kernel_build._compiler() is None


def _value_and_grads(conv, x, w, strides, padding):
    def loss(x, w):
        y = conv(x, w, strides, padding, dimension_numbers=LAYOUT)
        return jnp.sum(y * jnp.cos(y)), y  # a non-trivial cotangent

    (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, w)
    return y, grads


@needs_kernel
@pytest.mark.parametrize("batch,size,cin,cout,kernel,stride,padding", [
    (8, 16, 3, 8, 3, 2, "SAME"),        # stem: 2 slices (one per XLA thread here)
    (3, 9, 4, 6, 3, 1, "SAME"),         # odd batch and size: one slice
    (4, 10, 8, 16, 1, 2, "SAME"),       # 1x1 projection, stride 2, floor-division output
    (2, 11, 5, 7, 5, 2, "VALID"),
    (1, 7, 6, 6, 3, 1, ((1, 2), (0, 1))),  # explicit, asymmetric padding
    (6, 8, 16, 32, 3, 2, "SAME"),
])
def test_forward_and_gradients_match_xla(batch, size, cin, cout, kernel, stride, padding):
    rng = np.random.default_rng(batch * 100 + size)
    x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, cin, cout)) * 0.2, jnp.float32)
    strides = (stride, stride)
    y_ref, (dx_ref, dw_ref) = jax.jit(lambda x, w: _value_and_grads(lax.conv_general_dilated, x, w, strides, padding))(x, w)
    y, (dx, dw) = jax.jit(lambda x, w: _value_and_grads(onednn_conv_general_dilated, x, w, strides, padding))(x, w)
    for got, want in ((y, y_ref), (dx, dx_ref), (dw, dw_ref)):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


@needs_kernel
def test_kernel_is_used_only_where_it_applies():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 4)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 4, 4)), jnp.float32)
    nhwc = {"window_strides": (1, 1), "padding": "SAME", "dimension_numbers": LAYOUT}
    cases = {  # name: (lhs, rhs, keyword arguments)
        "bfloat16": (x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), nhwc),
        "dilation": (x, w, {**nhwc, "rhs_dilation": (2, 2)}),
        "groups": (x, w[:, :, :2], {**nhwc, "feature_group_count": 2}),
        "NCHW": (x.transpose(0, 3, 1, 2), w, {**nhwc, "dimension_numbers": ("NCHW", "HWIO", "NCHW")}),
        "negative padding": (x, w, {**nhwc, "padding": ((-1, 0), (0, 0))}),
    }

    def lowered(conv, lhs, rhs, kwargs) -> str:
        return jax.jit(lambda a, b: conv(a, b, **kwargs)).lower(lhs, rhs).as_text()

    assert kernel_build.TARGET in lowered(onednn_conv_general_dilated, x, w, nhwc)
    for name, (lhs, rhs, kwargs) in cases.items():
        assert kernel_build.TARGET not in lowered(onednn_conv_general_dilated, lhs, rhs, kwargs), name
        got = onednn_conv_general_dilated(lhs, rhs, **kwargs)
        want = lax.conv_general_dilated(lhs, rhs, **kwargs)
        np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32), err_msg=name)


def test_backend_choice_and_fallback(monkeypatch):
    assert conv_function("xla") is lax.conv_general_dilated
    with pytest.raises(ConfigError, match="unknown convolution backend"):
        conv_function("cudnn")
    monkeypatch.setattr(kernel_conv, "load", lambda: KernelStatus(False, "no C++ compiler found (install g++)"))
    with pytest.raises(ConfigError, match="no C\\+\\+ compiler found"):
        conv_function("onednn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert conv_function("auto") is lax.conv_general_dilated
    assert any("using XLA's convolutions" in str(w.message) for w in caught)


def test_compiler_failure_is_reported_not_cached(monkeypatch, tmp_path):
    if kernel_build._dist_file(kernel_build.HEADERS_DIST, "include/oneapi/dnnl/dnnl.hpp") is None:
        pytest.skip("no oneDNN wheel here")
    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with pytest.raises(RuntimeError, match="compiling onednn_conv.cc failed"):
        kernel_build.build()
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.tmp"))


def test_missing_compiler_is_a_reason_not_a_traceback(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    tools = kernel_build._toolchain()
    import os
    import sys

    if not (sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "AMD64")):
        assert tools.startswith("oneDNN kernels are built for Linux x86-64 only")
    elif kernel_build._dist_file(kernel_build.HEADERS_DIST, "include/oneapi/dnnl/dnnl.hpp") is None:
        assert tools.startswith("the oneDNN wheels are not installed")
    else:  # the case this test is about: everything is there except the compiler CXX names
        assert tools == "no C++ compiler found (install g++, or set CXX)"


@needs_kernel
def test_resnet_gradients_match_between_backends():
    from flax import nnx

    from rnn_jax.models.registry import create_model, model_spec

    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4, 36, 36, 3)), jnp.float32)

    def grads(conv: str):
        model = create_model(model_spec("resnet", "tiny", conv=conv), (36, 36, 3), 5, seed=0)
        return nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)

    for a, b in zip(jax.tree.leaves(grads("xla")), jax.tree.leaves(grads("onednn"))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


@needs_kernel
def test_flop_count_sees_through_the_kernel():
    # XLA's cost analysis cannot look inside FFI calls; the count must not drop with the kernel
    from rnn_jax.models.registry import create_model, gflops_per_image, model_spec

    models = [create_model(model_spec("resnet", "tiny", conv=c), (32, 32, 3), 5) for c in ("xla", "onednn")]
    counts = [gflops_per_image(model, (32, 32, 3)) for model in models]
    assert counts[0] > 0.001 and counts[1] == pytest.approx(counts[0])
    assert models[1].stem.conv_general_dilated is onednn_conv_general_dilated  # counted on a copy


def test_resume_may_switch_the_convolution_backend():
    from rnn_jax.config import RunConfig
    from rnn_jax.models.registry import ModelSpec

    trained = RunConfig(model=ModelSpec("resnet", "tiny", conv="auto"))
    assert RunConfig(model=ModelSpec("resnet", "tiny", conv="xla")).compatible_with(trained) == []
    assert RunConfig(model=ModelSpec("resnet", "small", conv="xla")).compatible_with(trained) != []

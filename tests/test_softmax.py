"""The one numpy softmax / log-softmax / logsumexp (runtime, calibration, ensembles, teachers)."""

import subprocess
import sys

import numpy as np

from rnn_jax.softmax import log_softmax, logsumexp, softmax


def test_softmax_is_the_normalised_exponential_in_the_asked_precision():
    x = np.random.default_rng(0).normal(size=(4, 5)) * 3
    want = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax(x), want, rtol=1e-12)
    assert softmax(x).dtype == np.float64 and softmax(x, dtype=np.float32).dtype == np.float32
    np.testing.assert_allclose(softmax(x, temperature=2.0), softmax(x / 2.0), rtol=1e-12)
    np.testing.assert_allclose(softmax(x, axis=0).sum(0), 1.0, rtol=1e-12)


def test_large_logits_cannot_overflow():
    x = np.array([[1000.0, 0.0, -1000.0], [1e30, 1e30, 0.0]], np.float32)
    for probs in (softmax(x), softmax(x, dtype=np.float32)):
        assert np.all(np.isfinite(probs))
        np.testing.assert_allclose(probs, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-6)
    np.testing.assert_allclose(np.exp(log_softmax(x[:1])), [[1, 0, 0]], atol=1e-6)
    assert np.isfinite(logsumexp(x)).all()


def test_logsumexp_and_log_softmax_agree_with_the_naive_formulas():
    x = np.random.default_rng(1).normal(size=(3, 4, 5))
    np.testing.assert_allclose(logsumexp(x, axis=1), np.log(np.exp(x).sum(1)), rtol=1e-12)
    assert logsumexp(x, axis=0, keepdims=True).shape == (1, 4, 5) and logsumexp(x).shape == (3, 4)
    np.testing.assert_allclose(log_softmax(x, temperature=0.5), np.log(softmax(x, temperature=0.5)), atol=1e-12)


def test_the_module_needs_no_jax():
    """The live runtime imports it."""
    code = "import sys, rnn_jax.softmax; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

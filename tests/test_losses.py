import math

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.distill.losses import cross_entropy, distillation_kl, kd_loss


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def test_cross_entropy_matches_hand_computation():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert float(cross_entropy(logits, jnp.array([0]))) == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_changes_target_as_documented():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    p = _softmax(np.array([2.0, 0.0, -1.0]))
    target = np.array([1 - 0.3 + 0.1, 0.1, 0.1])  # optax: (1-s)*onehot + s/K
    expected = -(target * np.log(p)).sum()
    assert float(cross_entropy(logits, jnp.array([0]), 0.3)) == pytest.approx(expected, rel=1e-6)


def test_kl_times_t_squared_matches_hand_computation():
    s, t, temp = np.array([1.0, 0.5, -0.5]), np.array([0.2, 1.5, -1.0]), 4.0
    ps, pt = _softmax(s / temp), _softmax(t / temp)
    expected = (pt * (np.log(pt) - np.log(ps))).sum() * temp**2
    got = distillation_kl(jnp.array([s]), jnp.array([t]), temp)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_kl_is_zero_when_student_equals_teacher():
    x = jnp.array([[0.3, -2.0, 1.0], [5.0, 0.0, 0.1]])
    assert float(distillation_kl(x, x, 2.0)) == pytest.approx(0.0, abs=1e-6)


def test_kd_loss_mixes_terms_with_alpha():
    s, t, y = jnp.array([[1.0, 0.0, -1.0]]), jnp.array([[0.0, 2.0, 0.0]]), jnp.array([2])
    ce = float(cross_entropy(s, y))
    kl = float(distillation_kl(s, t, 4.0))
    total, parts = kd_loss(s, y, t, 0.7, 4.0)
    assert float(total) == pytest.approx(0.7 * kl + 0.3 * ce, rel=1e-6)
    assert float(parts["ce"]) == pytest.approx(ce) and float(parts["kl"]) == pytest.approx(kl)


def test_alpha_zero_is_plain_cross_entropy_whatever_the_teacher():
    s, y = jnp.array([[1.0, 0.0, -1.0]]), jnp.array([1])
    total, _ = kd_loss(s, y, jnp.array([[100.0, -100.0, 0.0]]), 0.0, 4.0)
    assert float(total) == pytest.approx(float(cross_entropy(s, y)), rel=1e-6)


def test_an_objective_sums_its_terms_in_order_and_logs_every_part():
    """The step's loss is its terms' sum; KD + CE as a term is exactly kd_loss."""
    from rnn_jax.distill.kd import kd_term
    from rnn_jax.distill.objective import Batch, Objective, Outputs

    logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    batch = Batch(None, jnp.array([0, 1]), jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]), 0.7, 4.0)

    def extra_term(outputs, batch, extra):
        return extra * jnp.sum(outputs.logits), {"extra": jnp.sum(outputs.logits)}

    objective = Objective(lambda model, images: Outputs(model), (kd_term(0.1), extra_term))
    loss, outputs, parts = objective(logits, batch, 0.5)
    kd, kd_parts = kd_loss(logits, batch.labels, batch.teacher_logits, 0.7, 4.0, 0.1)
    assert float(loss) == float(kd + 0.5 * jnp.sum(logits)) and outputs.logits is logits
    assert set(parts) == {"ce", "kl", "extra"} and float(parts["ce"]) == float(kd_parts["ce"])

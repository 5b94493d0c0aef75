import pytest

from rnn_jax.distill.plateau import plateaued
from rnn_jax.distill.schedules import generation_temperature, learning_rate_schedule


def test_constant_temperature():
    assert [generation_temperature(g, 5, 4.0) for g in range(1, 5)] == [4.0] * 4


def test_linear_temperature_runs_from_start_to_end_over_students():
    temps = [generation_temperature(g, 5, 4.0, 1.0, "linear") for g in range(1, 5)]
    assert temps == pytest.approx([4.0, 3.0, 2.0, 1.0])


def test_cosine_temperature_endpoints_and_midpoint():
    temps = [generation_temperature(g, 4, 6.0, 2.0, "cosine") for g in range(1, 4)]
    assert temps == pytest.approx([6.0, 4.0, 2.0])


def test_step_temperature_halves_every_k():
    temps = [generation_temperature(g, 6, 8.0, kind="step", step_every=2) for g in range(1, 6)]
    assert temps == pytest.approx([8.0, 8.0, 4.0, 4.0, 2.0])


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown temperature schedule"):
        generation_temperature(1, 3, 4.0, kind="exp")


def test_learning_rate_warms_up_then_decays_to_zero():
    lr = learning_rate_schedule(0.1, total_steps=100, warmup_steps=10)
    assert float(lr(0)) == pytest.approx(0.0)
    assert float(lr(10)) == pytest.approx(0.1)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-6)
    assert float(lr(50)) < 0.1


@pytest.mark.parametrize(
    ("scores", "delta", "patience", "expected"),
    [
        ([0.5, 0.6, 0.7], 0.0, 1, False),  # still improving
        ([0.5, 0.6, 0.6], 0.0, 1, True),  # equal is not better
        ([0.5, 0.6, 0.605], 0.01, 1, True),  # gain below min_delta
        ([0.5, 0.6, 0.59, 0.61], 0.0, 2, False),  # recovered within patience
        ([0.5, 0.6, 0.59, 0.58], 0.0, 2, True),
        ([0.5, 0.4], 0.0, 0, False),  # patience 0 disables
        ([0.5], 0.0, 1, False),  # too short to judge
    ],
)
def test_plateau(scores, delta, patience, expected):
    assert plateaued(scores, delta, patience) is expected

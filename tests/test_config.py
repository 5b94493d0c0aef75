import pytest

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.errors import ConfigError
from rnn_jax.models.registry import ModelSpec


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DistillConfig(alpha=1.5), "--alpha"),
        (lambda: DistillConfig(temperature=0), "--temperature"),
        (lambda: DistillConfig(teacher="oracle"), "--teacher"),
        (lambda: RunConfig(gens=0), "--gens"),
        (lambda: TrainConfig(epochs=0), "--epochs"),
        (lambda: TrainConfig(lr=-1), "--lr"),
        (lambda: TrainConfig(augment="wild"), "--augment"),
        (lambda: ModelSpec("resnet", "huge"), "unknown size"),
        (lambda: ModelSpec("transformerxl"), "unknown model"),
        (lambda: ModelSpec("mlp", stochastic_depth=0.1), "residual"),
    ],
)
def test_bad_values_give_clear_errors(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_round_trip_through_dict():
    config = RunConfig(model=ModelSpec("vit", "tiny"), distill=DistillConfig(alpha=0.5), gens=4)
    assert RunConfig.from_dict(config.to_dict()) == config


def test_resume_compatibility_lists_differences():
    a = RunConfig(model=ModelSpec("resnet", "tiny"))
    b = RunConfig(model=ModelSpec("resnet", "small"))
    assert any("model" in p for p in a.compatible_with(b))
    assert a.compatible_with(RunConfig(model=ModelSpec("resnet", "tiny"), gens=9)) == []


def test_default_student_length_and_the_same_number_spelled_out_resume_each_other():
    from rnn_jax.config import RunConfig, TrainConfig

    implicit = RunConfig(train=TrainConfig(epochs=10))
    explicit = RunConfig(train=TrainConfig(epochs=10, student_epochs=20))
    assert implicit.train.epochs_for(0) == 10 and implicit.train.epochs_for(2) == 20
    assert implicit.compatible_with(explicit) == [] and explicit.compatible_with(implicit) == []
    assert RunConfig(train=TrainConfig(epochs=10, student_epochs=10)).compatible_with(implicit)


def test_a_stored_config_from_before_the_recipe_defaults_changed_keeps_its_behaviour():
    from rnn_jax.config import RunConfig

    stored = RunConfig().to_dict()
    del stored["train"]["keep_epoch"], stored["final_by"]
    old = RunConfig.from_dict(stored)
    assert old.train.keep_epoch == "best" and old.final_by == "val_acc"
    assert RunConfig().train.keep_epoch == "last" and RunConfig().final_by == "val_loss"
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()

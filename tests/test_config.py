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


# ---------------------------------------------------------------- flags made from the dataclasses


def _parse(argv: list[str], **defaults):
    import argparse

    from experiments.flags import add_common_flags

    parser = argparse.ArgumentParser()
    add_common_flags(parser, **defaults)
    return parser.parse_args(argv)


def test_every_flag_default_is_the_dataclass_default_unless_the_experiment_changes_it():
    from experiments.flags import run_config_from_args

    config = run_config_from_args(_parse([]))
    assert config == RunConfig()
    changed = run_config_from_args(_parse([], gens=4, epochs=10, no_flip=True, teacher="consistent"))
    assert changed == RunConfig(gens=4, train=TrainConfig(epochs=10, flip=False),
                                distill=DistillConfig(teacher="consistent"))


def test_help_and_choices_come_from_the_field_metadata():
    import argparse

    from experiments.flags import DISTILLATION, LINEAGE, add_common_flags, dest
    from rnn_jax.config import AUGMENTATIONS, config_field

    parser = argparse.ArgumentParser()
    add_common_flags(parser, mixup=0.2, batch_size=None)
    actions = {a.dest: a for a in parser._actions}
    for path in LINEAGE + DISTILLATION:
        assert config_field(path)[1].metadata["help"], path
    assert actions["augment"].choices == AUGMENTATIONS
    assert actions["mixup"].help.endswith("default 0.2)") and actions["batch_size"].help.endswith("from --preset)")
    assert actions["weight_decay"].help == "weight decay (default 5e-4)"
    assert actions[dest("train.flip")].option_strings == ["--no-flip"]
    with pytest.raises(TypeError, match="no config flag"):
        add_common_flags(argparse.ArgumentParser(), warmup_epochs=1)


def test_set_reaches_a_field_without_a_flag_and_refuses_one_with_a_flag():
    from experiments.flags import run_config_from_args

    config = run_config_from_args(_parse(["--set", "train.warmup_epochs=1", "--set", "ensemble_from=0",
                                          "--set", "distill.teacher_heads=final", "--set", "train.eval_batch_size=none"]))
    assert config.train.warmup_epochs == 1.0 and config.ensemble_from == 0
    assert config.distill.teacher_heads == "final" and config.train.eval_batch_size is None
    for bad, match in ((["--set", "train.lr=0.1"], "use --lr"), (["--set", "train.nope=1"], "unknown config field"),
                       (["--set", "train.warmup_epochs"], "section.field=value"),
                       (["--set", "train.warmup_epochs=soon"], "not a value of type float"),
                       (["--set", "train.warmup_epochs=-1"], "--warmup-epochs must be >= 0")):
        with pytest.raises(ConfigError, match=match):
            run_config_from_args(_parse(bad))


def test_config_imports_nothing_from_the_modules_that_implement_it():
    import ast
    from pathlib import Path

    import rnn_jax.config

    tree = ast.parse(Path(rnn_jax.config.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith(("rnn_jax.distill", "rnn_jax.data", "rnn_jax.lineage"))}


# ---------------------------------------------------------------- one error-to-exit-code rule


def test_main_guard_turns_errors_and_codes_into_exit_codes(capsys):
    from rnn_jax.errors import exit_code, main_guard

    def fails(argv):
        raise ConfigError("--x must be 1")

    def interrupted(argv):
        raise KeyboardInterrupt

    main_guard(lambda argv: None, [])  # success: returns
    main_guard(lambda argv: [1, 2], [])  # a main that returns rows, not a code
    for main, code, err in ((fails, 2, "error: --x must be 1\n"), (interrupted, 130, "\ninterrupted\n"),
                            (lambda argv: 3, 3, "")):
        with pytest.raises(SystemExit) as info:
            main_guard(main, [])
        assert info.value.code == code and capsys.readouterr().err == err
    with pytest.raises(ConfigError):
        main_guard(fails, ["--debug"])
    # the camera apps: --debug prints the traceback and keeps exit code 2; Ctrl-C is quiet
    assert exit_code(lambda: fails(None), debug=True, debug_raises=False, interrupted=None) == 2
    assert "Traceback" in capsys.readouterr().err
    assert exit_code(lambda: interrupted(None), debug=False, interrupted=None) == 130
    assert capsys.readouterr().err == ""


# ------------------------------------------------ one source for each default (issue 36 part 3)
@pytest.mark.parametrize(("kind", "module", "loader", "preset"), [
    ("builtin", "rnn_jax.data.builtin", "make_builtin_gestures", "demo"),
    ("folders", "rnn_jax.data.folders", "load_class_folders", "cpu"),
])
def test_a_spec_without_an_image_size_takes_the_presets(monkeypatch, kind, module, loader, preset):
    """The registry has no size of its own: change the preset and the loaded size follows."""
    import dataclasses
    import importlib

    from rnn_jax import presets
    from rnn_jax.data.registry import DataSpec, load_dataset

    seen = {}

    def fake(*args, **kwargs):
        seen["size"] = kwargs.get("image_size", args[1] if len(args) > 1 else None)
        return "data"

    monkeypatch.setattr(importlib.import_module(module), loader, fake)
    monkeypatch.setitem(presets.PRESETS, preset, dataclasses.replace(presets.PRESETS[preset], image_size=40))
    assert load_dataset(DataSpec(kind, path="/nowhere")) == "data"
    assert seen["size"] == 40
    assert load_dataset(DataSpec(kind, path="/nowhere", image_size=24)) == "data" and seen["size"] == 24


@pytest.mark.parametrize(("experiment", "key", "value"), [
    ("fashion_mnist", "epochs", 7), ("fashion_mnist", "mixup", 0.3), ("fashion_mnist", "teacher", "cached"),
    ("fashion_mnist", "gens", 2), ("landmarks", "epochs", 9), ("landmarks", "model", "lstm"),
    ("landmarks", "batch_size", 16), ("hagrid", "gens", 3), ("motion", "epochs", 7), ("motion", "batch_size", 32),
])
def test_each_experiments_defaults_come_from_its_recipe(monkeypatch, experiment, key, value):
    """Change the recipe in rnn_jax/presets.py and the experiment's parser follows: no second copy."""
    import importlib

    from rnn_jax import presets

    module = importlib.import_module(f"experiments.{experiment}")
    assert getattr(module.build_parser().parse_args([]), key) == presets.RECIPES[experiment][key]
    monkeypatch.setitem(presets.RECIPES, experiment, {**presets.RECIPES[experiment], key: value})
    assert getattr(module.build_parser().parse_args([]), key) == value

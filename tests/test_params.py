"""params.yaml validation and composition: the shipped files are valid and agree, every
recipe composes, bad values are named with a fix."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from fmnist.core.config import CONF, compose
from fmnist.core.errors import PipelineError
from fmnist.data.params import DataParams, PrepareParams
from fmnist.train.params import (
    EvaluateParams,
    TrainParams,
    load_params,
    model_recipes,
    selected_recipe,
)


def _params(tmp_path: Path, *overrides: str) -> Path:
    """params.yaml as ``dvc exp run -S <overrides>`` writes it."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(compose(overrides, ROOT / CONF)))
    return path


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.recipe.epochs >= 1 and params.model


def test_committed_params_yaml_is_the_composition_of_conf() -> None:
    # dvc exp run rewrites params.yaml from conf/: a hand edit here would be lost
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == compose([], ROOT / CONF)


def test_config_yaml_spells_out_the_code_defaults() -> None:
    shared = compose([], ROOT / CONF)
    for section, cls in (
        ("data", DataParams),
        ("prepare", PrepareParams),
        ("train", TrainParams),
        ("evaluate", EvaluateParams),
    ):
        assert shared[section] == asdict(cls()), f"conf/config.yaml's {section} vs the code"


def test_every_recipe_composes_and_is_valid(tmp_path: Path) -> None:
    recipes = model_recipes(ROOT / CONF)
    assert {"fastcnn", "cnn2", "seq6", "logreg"} <= set(recipes)
    for name in recipes:
        assert load_params(_params(tmp_path, f"model={name}")).model == name


def test_a_recipe_extends_another_written_once() -> None:
    recipes = model_recipes(ROOT / CONF)
    assert recipes["seq6"] == recipes["seq2"] and recipes["seq2"]["arch"]["dropout"] == 0.5
    assert recipes["fastcnn-hour"] == recipes["fastcnn-wide"] | {"epochs": 30}


def test_model_switch_switches_recipe(tmp_path: Path) -> None:
    params = load_params(_params(tmp_path, "model=cnn2"))
    assert params.recipe.batch_size == 70 and params.recipe.arch["activation"] == "leaky_relu"


def test_a_recipe_value_is_overridden_and_a_default_added(tmp_path: Path) -> None:
    params = load_params(_params(tmp_path, "model=cnn1", "model.lr=0.01", "+model.ema=0.99"))
    assert params.recipe.lr == 0.01 and params.recipe.ema == 0.99


def test_composition_refusals_name_the_fix() -> None:
    with pytest.raises(PipelineError, match=r"Could not find 'model/resnet9000'"):
        compose(["model=resnet9000"], ROOT / CONF)
    with pytest.raises(PipelineError, match=r"use \+model.ema=0.9"):
        compose(["model.ema=0.9"], ROOT / CONF)


def test_unknown_model_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.name is 'resnet9000'; valid names: .*cnn1"):
        load_params(_params(tmp_path, "model.name=resnet9000"))


def test_experiments_of_the_old_shape_still_read() -> None:
    old = {"model": "cnn1", "models": {"cnn1": {"lr": 0.001}, "cnn2": {"lr": 0.002}}}
    assert selected_recipe(old) == ("cnn1", {"lr": 0.001})
    new = {"model": {"name": "cnn1", "lr": 0.001}}
    assert selected_recipe(new) == ("cnn1", {"lr": 0.001})


def test_negative_learning_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.lr is -0.1; use a positive"):
        load_params(_params(tmp_path, "model=cnn1", "model.lr=-0.1"))


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = _params(
        tmp_path,
        "model=cnn1",
        "model.lr=-1",
        "model.optimizer=adamw2",
        "train.device=tpu",
        "prepare.val_size=many",
    )
    with pytest.raises(PipelineError) as err:
        load_params(path)
    message = str(err.value)
    assert "4 problem(s)" in message and "\n" not in message
    for fragment in ("lr", "adamw2", "tpu", "val_size"):
        assert fragment in message


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.arch.dropuot is not an option"):
        load_params(_params(tmp_path, "model=cnn1", "+model.arch.dropuot=0.1"))
    with pytest.raises(PipelineError, match=r"train.epochs is not a known param"):
        load_params(_params(tmp_path, "+train.epochs=3"))


def test_flip_tta_without_flip_training_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.tta needs model.augment.hflip"):
        load_params(_params(tmp_path, "model=cnn1", "+model.tta=true"))


def test_shift_tta_beyond_the_trained_shifts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.tta_shift is 1; use 0 to .*\(0\)"):
        load_params(_params(tmp_path, "model=cnn1", "+model.tta_shift=1"))
    params = load_params(
        _params(tmp_path, "model=cnn1", "+model.tta_shift=2", "+model.augment.crop_padding=2")
    )
    assert params.recipe.tta_shift == 2


def test_train_on_names_its_choices_and_needs_no_early_stopping(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model.train_on is 'all'; valid: train, train"):
        load_params(_params(tmp_path, "model=cnn1", "+model.train_on=all"))
    with pytest.raises(PipelineError, match=r"model.patience needs held-out validation"):
        load_params(
            _params(tmp_path, "model=cnn1", "+model.train_on=train+val", "+model.patience=5")
        )
    params = load_params(_params(tmp_path, "model=cnn1", "+model.train_on=train+val"))
    assert params.recipe.train_on == "train+val"

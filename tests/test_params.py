"""params.yaml validation: the shipped file is valid, bad values are named with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from fmnist.core.errors import PipelineError
from fmnist.train.params import load_params


def _params(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.recipe.epochs >= 1 and params.model


def test_every_model_recipe_in_params_is_valid(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in raw["models"]:
        assert load_params(_params(tmp_path, model=name)).model == name


def test_model_switch_switches_recipe(tmp_path: Path) -> None:
    params = load_params(_params(tmp_path, model="cnn2"))
    assert params.recipe.batch_size == 70 and params.recipe.arch["activation"] == "leaky_relu"


def test_unknown_model_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"model is 'resnet9000'; valid names: .*cnn1"):
        load_params(_params(tmp_path, model="resnet9000"))


def test_negative_learning_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"models.cnn1.lr is -0.1; use a positive"):
        load_params(_params(tmp_path, model="cnn1", models__cnn1__lr=-0.1))


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = _params(
        tmp_path,
        model="cnn1",
        models__cnn1__lr=-1,
        models__cnn1__optimizer="adamw2",
        train__device="tpu",
        prepare__val_size="many",
    )
    with pytest.raises(PipelineError) as err:
        load_params(path)
    message = str(err.value)
    assert "4 problem(s)" in message and "\n" not in message
    for fragment in ("lr", "adamw2", "tpu", "val_size"):
        assert fragment in message


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"models.cnn1.arch.dropuot is not an option"):
        load_params(_params(tmp_path, model="cnn1", models__cnn1__arch={"dropuot": 0.1}))
    with pytest.raises(PipelineError, match=r"train.epochs is not a known param"):
        load_params(_params(tmp_path, train__epochs=3))


def test_flip_tta_without_flip_training_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"models.cnn1.tta needs models.cnn1.augment.hflip"):
        load_params(_params(tmp_path, model="cnn1", models__cnn1__tta=True))


def test_shift_tta_beyond_the_trained_shifts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"models.cnn1.tta_shift is 1; use 0 to .*\(0\)"):
        load_params(_params(tmp_path, model="cnn1", models__cnn1__tta_shift=1))
    crop = {"crop_padding": 2}
    params = load_params(
        _params(tmp_path, model="cnn1", models__cnn1__tta_shift=2, models__cnn1__augment=crop)
    )
    assert params.recipe.tta_shift == 2


def test_train_on_names_its_choices_and_needs_no_early_stopping(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"models.cnn1.train_on is 'all'; valid: train, train"):
        load_params(_params(tmp_path, model="cnn1", models__cnn1__train_on="all"))
    with pytest.raises(PipelineError, match=r"models.cnn1.patience needs held-out validation"):
        load_params(
            _params(
                tmp_path, model="cnn1", models__cnn1__train_on="train+val", models__cnn1__patience=5
            )
        )
    params = load_params(_params(tmp_path, model="cnn1", models__cnn1__train_on="train+val"))
    assert params.recipe.train_on == "train+val"

"""One way to train: the train stage is :func:`train` plus files, so anything that calls
:func:`train` (a benchmark, a notebook) gets the stage's very weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml
from conftest import ROOT, synthetic_split

from fmnist.core import layout
from fmnist.core.config import CONF, compose
from fmnist.data.prepared import Split, load_split, save_split
from fmnist.train.outputs import run_training
from fmnist.train.params import load_params
from fmnist.train.training import train

SMALL = ["model.epochs=2", "model.arch.width=8"]


def _workspace(root: Path, *overrides: str) -> None:
    params = compose([*overrides, "prepare.val_size=100"], ROOT / CONF)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for split, (n, seed) in {"train": (400, 1), "val": (100, 2), "test": (100, 3)}.items():
        images, labels = synthetic_split(n, seed)
        save_split(layout.split_path(split), Split(images, labels.astype(np.int64)))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].cpu()) for k in a)


def test_the_train_stage_is_the_training_function_plus_files(in_tmp: Path) -> None:
    for overrides in (SMALL, ["model=cnn1", "model.epochs=2"]):  # train+val, held out
        _workspace(in_tmp, *overrides)
        params = load_params(layout.PARAMS)
        info = run_training(params)["train"]
        saved = torch.load(layout.MODEL, weights_only=True)["state_dict"]
        splits = [load_split(layout.split_path(s)) for s in ("train", "val")]
        trained = train(params, *splits, verbose=False)
        assert _same(saved, trained.model.state_dict()), params.model
        assert info["best_epoch"] == trained.result.best_epoch
        assert info["train_images"] == trained.train_images


def test_on_epoch_sees_every_epoch_and_the_model_it_would_keep(in_tmp: Path) -> None:
    _workspace(in_tmp, *SMALL)
    params = load_params(layout.PARAMS)
    seen: list[tuple[int, int]] = []
    splits = [load_split(layout.split_path(s)) for s in ("train", "val")]
    trained = train(
        params,
        *splits,
        on_epoch=lambda record, model: seen.append((record.epoch, id(model))),
        verbose=False,
    )
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert trained.result.best_epoch == 2  # train+val keeps the last epoch


def test_the_same_checkpoint_saves_to_the_same_bytes(tmp_path: Path) -> None:
    # torch.save given a path names its archive after the (random) temporary file:
    # the same weights would then hash differently in dvc.lock on every retrain
    from fmnist.data.datasets import FASHION_MNIST
    from fmnist.models import build_model
    from fmnist.train.checkpoint import save_checkpoint

    model = build_model("fastcnn", {"width": 8})
    for name in ("a.pt", "b.pt"):
        save_checkpoint(
            tmp_path / name,
            model_name="fastcnn",
            arch={"width": 8},
            state_dict=model.state_dict(),
            classes=FASHION_MNIST.classes,
            in_shape=(1, 28, 28),
        )
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()

"""The data side of params.yaml: ``data`` (which dataset, from where) and ``prepare``
(the split). The download and prepare stages read only these, so editing a model's
code or recipe never reruns them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist.core.config import failed_checks, raise_problems, read_params_file, section
from fmnist.data.datasets import DATASETS, DatasetSpec
from fmnist.data.sources import SOURCES

MAX_SEED = 2**31 - 1  # numpy, torch and scikit-learn all take 0 to this (numpy stops at 2**32 - 1)


@dataclass(frozen=True)
class DataParams:
    dataset: str = "fashion-mnist"
    source: str = "auto"
    folder: str = ""
    url: str = ""


@dataclass(frozen=True)
class PrepareParams:
    val_size: int = 10000
    seed: int = 42
    train_limit: int = 0
    test_limit: int = 0


def parse_data(raw: dict[str, Any], problems: list[str]) -> tuple[DataParams, PrepareParams]:
    """The ``data`` and ``prepare`` sections of ``raw``, their problems added to
    ``problems``."""
    data = section(DataParams, raw.get("data"), "data", problems)
    prepare = section(PrepareParams, raw.get("prepare"), "prepare", problems)
    if data.dataset not in DATASETS:
        problems.append(f"data.dataset is {data.dataset!r}; valid: {', '.join(DATASETS)}")
    if data.source not in SOURCES:
        problems.append(f"data.source is {data.source!r}; valid: {', '.join(SOURCES)}")
    if data.folder and not Path(data.folder).is_dir():
        problems.append(
            f"data.folder is {data.folder!r}, which is not a folder; fix the path, or set "
            'data.folder: "" to use the default source'
        )
    if data.dataset in DATASETS:
        problems += _split_problems(prepare, DATASETS[data.dataset])
    problems += failed_checks(
        [
            (
                0 <= prepare.seed <= MAX_SEED,
                "prepare.seed",
                prepare.seed,
                f"0 to {MAX_SEED} (numpy and scikit-learn take no other)",
            ),
            (
                prepare.train_limit >= 0,
                "prepare.train_limit",
                prepare.train_limit,
                "0 (all) or more",
            ),
            (prepare.test_limit >= 0, "prepare.test_limit", prepare.test_limit, "0 (all) or more"),
        ]
    )
    return data, prepare


def _split_problems(prepare: PrepareParams, spec: DatasetSpec) -> list[str]:
    """What the stratified splits cannot do: each side of a split needs at least one
    image of every class, so a subset or a validation split of fewer images than
    classes (or leaving fewer behind) is refused here rather than by scikit-learn."""
    classes = len(spec.classes)
    problems = []
    for key, limit, published in (
        ("train_limit", prepare.train_limit, spec.sizes["train"]),
        ("test_limit", prepare.test_limit, spec.sizes["test"]),
    ):
        if 0 < limit < published and not classes <= limit <= published - classes:
            problems.append(
                f"prepare.{key} is {limit}; use 0 (all), {published:,} or more, or "
                f"{classes} to {published - classes:,}: a stratified subset needs an image "
                f"of each of the {classes} classes on both sides"
            )
    published = spec.sizes["train"]
    available = min(prepare.train_limit, published) if prepare.train_limit else published
    if not classes <= prepare.val_size <= available - classes:
        problems.append(
            f"prepare.val_size is {prepare.val_size} but {available:,} training images are "
            f"available; use {classes} to {available - classes:,} (every class on both "
            "sides of the split), or raise prepare.train_limit"
        )
    return problems


def load_data_params(path: str | Path = "params.yaml") -> tuple[DataParams, PrepareParams]:
    """Read and validate the data side of ``path``; one PipelineError lists every problem."""
    problems: list[str] = []
    data, prepare = parse_data(read_params_file(path), problems)
    raise_problems(str(path), problems)
    return data, prepare

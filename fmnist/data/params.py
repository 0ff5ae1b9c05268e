"""The data side of params.yaml: ``data`` (which dataset, from where) and ``prepare``
(the split). The download and prepare stages read only these, so editing a model's
code or recipe never reruns them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist.core.config import failed_checks, raise_problems, read_params_file, section
from fmnist.data.datasets import DATASETS
from fmnist.data.sources import SOURCES


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
    if data.dataset in DATASETS and prepare.val_size >= 1:
        published = DATASETS[data.dataset].sizes["train"]
        available = min(prepare.train_limit, published) if prepare.train_limit else published
        if prepare.val_size >= available:
            problems.append(
                f"prepare.val_size is {prepare.val_size} but only {available:,} training "
                "images are available; lower prepare.val_size or raise prepare.train_limit"
            )
    problems += failed_checks(
        [
            (prepare.val_size >= 1, "prepare.val_size", prepare.val_size, "at least 1"),
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


def load_data_params(path: str | Path = "params.yaml") -> tuple[DataParams, PrepareParams]:
    """Read and validate the data side of ``path``; one PipelineError lists every problem."""
    problems: list[str] = []
    data, prepare = parse_data(read_params_file(path), problems)
    raise_problems(str(path), problems)
    return data, prepare

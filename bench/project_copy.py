"""A copy of the pipeline in another folder, with params overridden: what the end-to-end
tests and the emulated-CPU check run, so both run the same small profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# the CI guard's profile: 1,000 + 100 training images, 200 test images, 2 epochs, width 8
GUARD_PROFILE: dict[tuple[str, ...], object] = {
    ("prepare", "train_limit"): 1100,
    ("prepare", "val_size"): 100,
    ("prepare", "test_limit"): 200,
    ("models", "fastcnn", "epochs"): 2,
    ("models", "fastcnn", "arch", "width"): 8,
}


def copy_project(repo: Path, overrides: dict[tuple[str, ...], object]) -> Path:
    """The pipeline's code, dvc.yaml and params.yaml in ``repo``, with params.yaml's
    ``overrides`` (a key path -> value, e.g. a small profile) applied; not yet git/DVC."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("fmnist", "stages"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for keys, value in overrides.items():
        node = params
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo

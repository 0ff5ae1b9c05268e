"""A copy of the pipeline in another folder, with settings overridden: what the end-to-end
tests and the emulated-CPU check run, so both run the same small profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from fmnist.core.config import write_params

ROOT = Path(__file__).resolve().parents[1]
# the CI guard's profile: 1,000 + 100 training images, 200 test images, 2 epochs, width 8
GUARD_PROFILE: dict[tuple[str, ...], object] = {
    ("prepare", "train_limit"): 1100,
    ("prepare", "val_size"): 100,
    ("prepare", "test_limit"): 200,
    ("model", "epochs"): 2,
    ("model", "arch", "width"): 8,
}


def copy_project(
    repo: Path, overrides: dict[tuple[str, ...], object], model: str | None = None
) -> Path:
    """The pipeline's code, conf/, dvc.yaml and params.yaml in ``repo``, not yet git/DVC.

    ``model`` becomes the copy's default model. ``overrides`` (a key path -> value, e.g.
    a small profile) are written into the copy's conf/: ``("model", ...)`` into that
    model's recipe, others into config.yaml, so that ``dvc exp run``, which composes
    params.yaml from conf/, keeps them."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("fmnist", "stages", "conf", "deploy"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    config_path = repo / "conf" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    choice = next(d for d in config["defaults"] if isinstance(d, dict) and "model" in d)
    choice["model"] = default_model = model or choice["model"]
    recipe_path = repo / "conf" / "model" / f"{default_model}.yaml"
    recipe = yaml.safe_load(recipe_path.read_text())
    for keys, value in overrides.items():
        node, path = (recipe, keys[1:]) if keys[0] == "model" else (config, keys)
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    write_params(repo / "params.yaml", conf=repo / "conf")
    return repo


def project_repo(
    path: Path,
    overrides: dict[tuple[str, ...], object],
    model: str | None = None,
    remote: Path | None = None,
) -> Path:
    """:func:`copy_project` as a committed git + DVC repository (Hydra composition on, as
    here; ``remote``: its default DVC remote). ``dvc exp run`` needs a commit."""
    repo = copy_project(path, overrides, model)
    steps = [
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "test@example.invalid"],
        ["git", "config", "user.name", "test"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "hydra.enabled", "true"],
        *([["dvc", "remote", "add", "-d", "local", str(remote)]] if remote else []),
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "the project"],
    ]
    for step in steps:
        sh(repo, *step)
    return repo


def sh(cwd: Path, *args: str) -> str:
    """``args`` in ``cwd`` with this interpreter's commands first on PATH; a failure
    raises with the command's whole output."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env |= {"DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr

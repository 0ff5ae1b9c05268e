"""The package's shape holds: imports point one way between the layers of fmnist/
(docs/design.md), and each DVC stage's deps in dvc.yaml cover every module it runs, so
editing one reruns the stages that use it and no stage is left stale."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Which sub-packages each layer may import (besides itself): docs/design.md.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "models": {"core"},
    "train": {"core", "data", "models"},
    "evaluate": {"core", "data", "models", "train"},
    "serve": {"core", "data", "models", "train"},
    "review": {"core", "data", "models", "train", "evaluate", "serve"},
}


def module_path(name: str) -> Path | None:
    """The file of module ``name`` in this repository, or None (a third-party module)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every project module ``path`` imports, at any depth in the file (a function's
    late import runs too), with the packages Python initialises on the way."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from fmnist.data import formats` imports the submodule fmnist.data.formats
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parents are imported first
                prefix = ".".join(parts[:i])
                if parts[0] in ("fmnist", "stages") and module_path(prefix):
                    found.add(prefix)
    return found


def closure(start: str) -> set[str]:
    """``start``, its parent packages (``python -m stages.train`` runs ``stages/__init__``
    first) and every project module they import, transitively."""
    parts = start.split(".")
    seen, todo = set(), [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name)
        if path is not None:
            todo.extend(imported_modules(path) - seen)
    return seen


def fmnist_modules() -> list[str]:
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "fmnist").rglob("*.py")
    )


def layer(module: str) -> str | None:
    """The sub-package a module belongs to (``fmnist.train.engine`` -> ``train``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "fmnist" else None


def test_every_module_belongs_to_a_layer() -> None:
    loose = [m for m in fmnist_modules() if m != "fmnist" and layer(m) not in ALLOWED]
    assert loose == [], f"modules outside the layers of docs/design.md: {loose}"


def test_imports_point_one_way() -> None:
    wrong = []
    for module in fmnist_modules():
        here = layer(module)
        for target in imported_modules(module_path(module)):
            if target.startswith(("stages", "bench")):
                wrong.append(f"{module} imports {target}: fmnist never imports its users")
            there = layer(target)
            if here and there and there != here and there not in ALLOWED[here]:
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert wrong == [], "\n".join(wrong)


def test_the_direction_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from fmnist.train.engine import fit\nimport fmnist.review.docs\n")
    targets = {layer(t) for t in imported_modules(bad)}
    assert {"train", "review"} <= targets  # what test_imports_point_one_way judges


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def runs_code(path: Path) -> bool:
    """Whether a module does more than name its package: a package ``__init__`` that is
    only a docstring and constants changes no stage's output."""
    if path.name != "__init__.py":
        return True
    body = ast.parse(path.read_text()).body
    return any(not isinstance(node, (ast.Expr, ast.Assign)) for node in body)


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_the_code_it_runs(stage: str) -> None:
    spec = _stages()[stage]
    entry = spec["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    modules = {m for m in closure(entry) if runs_code(module_path(m))}
    missing = sorted(
        module_path(m).relative_to(ROOT).as_posix()
        for m in modules
        if not covered(module_path(m), deps)
    )
    assert missing == [], f"dvc.yaml stage {stage} runs these but does not list them: {missing}"
    # and no dep is code the stage never runs (editing it would rerun the stage for nothing)
    files = {module_path(m).relative_to(ROOT).as_posix() for m in modules}
    unused = [
        d
        for d in deps
        if (d.endswith(".py") and d not in files)
        or (
            (d.startswith(("fmnist", "stages")) and not d.endswith(".py"))
            and not any(f.startswith(d.rstrip("/") + "/") for f in files)
        )
    ]
    assert unused == [], f"dvc.yaml stage {stage} lists code it does not run: {unused}"


def test_train_lists_no_folder_holding_code_it_does_not_run() -> None:
    """The cheap stages list whole package folders (an unrelated edit reruns them for
    seconds, with byte-identical outputs); train must not retrain for an unrelated edit."""
    spec = _stages()["train"]
    modules = {m for m in closure("stages.train") if runs_code(module_path(m))}
    files = {module_path(m).relative_to(ROOT).as_posix() for m in modules}
    folders = [d for d in spec["deps"] if d.startswith("fmnist") and not d.endswith(".py")]
    extra = sorted(
        p.relative_to(ROOT).as_posix()
        for folder in folders
        for p in (ROOT / folder).glob("*.py")
        if runs_code(p) and p.relative_to(ROOT).as_posix() not in files
    )
    assert extra == [], f"editing these would retrain for nothing: {extra}"

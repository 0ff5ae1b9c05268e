"""Reading params.yaml into frozen dataclasses, collecting every problem in one message.

Each layer owns its section (fmnist.data.params: data and prepare; fmnist.train.params:
the model, its recipe, train and evaluate), so a stage that reads only the data params
does not import, or depend on, the model zoo.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from fmnist.core.errors import PipelineError


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a clear error when it is unreadable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read {path}: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    return raw


def raise_problems(source: str, problems: list[str]) -> None:
    """One PipelineError naming every problem, or nothing."""
    if problems:
        raise PipelineError(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


def section(cls: type, raw: Any, name: str, problems: list[str]) -> Any:
    """Build dataclass ``cls`` from dict ``raw``, noting unknown keys and wrong types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        problems.append(f"{name} must be a mapping, not {type(raw).__name__}")
        return cls()
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"{name}.{key} is not a known param; valid: {', '.join(known)}")
            continue
        default = known[key].default
        if isinstance(default, (int, float, str)) and not _same_type(value, default):
            problems.append(f"{name}.{key} is {value!r}; expected a {type(default).__name__}")
            continue
        values[key] = float(value) if isinstance(default, float) else value
    return cls(**values)


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def failed_checks(checks: list[tuple[bool, str, Any, str]], prefix: str = "") -> list[str]:
    """Messages for the ``(ok, key, value, fix)`` checks that failed."""
    return [f"{prefix}{key} is {value!r}; use {fix}" for ok, key, value, fix in checks if not ok]

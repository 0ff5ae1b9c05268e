"""Reading params.yaml into frozen dataclasses, collecting every problem in one message,
and composing params.yaml from conf/ as ``dvc exp run`` does.

Each layer owns its section (fmnist.data.params: data and prepare; fmnist.train.params:
the model, its recipe, train and evaluate), so a stage that reads only the data params
does not import, or depend on, the model zoo.

params.yaml is DVC's Hydra composition of conf/config.yaml and the selected model's
recipe, conf/model/<name>.yaml: ``dvc exp run -S model=cnn2`` writes it. :func:`compose`
is the same composition for code that needs it without DVC (a test's copy of the
project, the docs' table of every recipe).
"""

from __future__ import annotations

from collections.abc import Sequence
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


CONF = Path("conf")  # conf/config.yaml and one recipe per model in conf/model/


def compose(overrides: Sequence[str] = (), conf: Path = CONF) -> dict[str, Any]:
    """params.yaml as ``dvc exp run -S <overrides>`` composes it from ``conf``.

    An override Hydra refuses (an unknown model, a key the recipe does not have) is one
    PipelineError with Hydra's own reason, which names the fix.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(Path(conf).resolve()), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        reason = " ".join(str(exc).split("\n")[:2])
        raise PipelineError(f"cannot compose {conf}/ with {list(overrides)}: {reason}") from None
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(path: Path, overrides: Sequence[str] = (), conf: Path = CONF) -> None:
    """Write the composition of ``conf`` with ``overrides`` to ``path`` as DVC writes it."""
    from omegaconf import OmegaConf

    path.write_text(OmegaConf.to_yaml(compose(overrides, conf)), encoding="utf-8")


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

"""The model registry, on DVC's open-source core alone: dvc.yaml's ``artifacts:`` names
the model, a release is an annotated git tag ``<name>@v<semver>``, and anyone can fetch
a release by name and version, from a path or a git URL, without cloning the project.

    python -m fmnist.serve.release 1.2.0            # tag the committed model
    dvc artifacts get <repo> fashion-cnn --rev v1.2.0
    load("fashion-cnn", "v1.2.0", repo="<repo>")   # this module's: a ready model

The tag form is the one ``dvc artifacts get`` resolves versions from; no Studio and no
GTO command are needed to make or read it (plain ``git tag -a``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from fmnist.core.errors import PipelineError
from fmnist.train.checkpoint import read_checkpoint

MODEL_ARTIFACT = "fashion-cnn"  # dvc.yaml's artifacts: the trained models/model.pt


@dataclass(frozen=True)
class LoadedModel:
    """A registry model ready to call: ``model(x)`` takes float32 images shaped
    ``input_shape`` (after the batch dimension), scaled by ``scale`` (x * scale in [0, 1]),
    and returns logits over ``classes``."""

    model: nn.Module
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    scale: float
    version: str  # the version asked for, or "latest"
    rev: str  # the git commit it came from


def load(
    name: str = MODEL_ARTIFACT, version: str | None = None, repo: str | None = None
) -> LoadedModel:
    """Fetch artifact ``name`` at ``version`` (``v1.2.0``; None: the latest release)
    from ``repo`` (a path or git URL; None: this project) through DVC, and rebuild it
    with the checkpoint checks of :func:`~fmnist.train.checkpoint.read_checkpoint`."""
    import dvc.api
    from dvc.exceptions import ArtifactNotFoundError, DvcException

    where = repo or "this project"
    if name != MODEL_ARTIFACT:  # the ONNX export is not a checkpoint: say how to use it
        raise PipelineError(
            f"load() rebuilds PyTorch checkpoints, and {name} is not {MODEL_ARTIFACT}: fetch "
            f"it with `dvc artifacts get {repo or '.'} {name}` (the ONNX export runs in "
            f"onnxruntime), or load({MODEL_ARTIFACT!r}, ...)"
        )
    if repo is not None and "://" not in repo and not Path(repo, ".git").exists():
        raise PipelineError(
            f"{repo} is not a git repository; name a clone of the project, or its git URL"
        )
    try:
        found = dvc.api.artifacts_show(name, version=version, repo=repo)
        with dvc.api.open(found["path"], repo=repo, rev=found["rev"], mode="rb") as f:
            data = f.read()
    except ArtifactNotFoundError:
        raise PipelineError(
            f"{where} has no release {name}@{version or '(any)'}; its releases are the "
            f"git tags {name}@v*: `git tag --list '{name}@v*'`"
        ) from None
    except DvcException as exc:
        raise PipelineError(f"cannot fetch {name} from {where}: {exc}") from None
    except Exception as exc:  # gto's and scmrepo's own errors: name them, not a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PipelineError(
            f"cannot read the releases of {where} ({type(exc).__name__}: {reason}); check "
            "that it is a clone of the project or its git URL"
        ) from None
    label = f"{name}@{version or 'latest'}"
    model, meta = read_checkpoint(io.BytesIO(data), label)
    return LoadedModel(
        model=model,
        classes=tuple(meta["classes"]),
        input_shape=tuple(meta["input"]["shape"]),
        scale=float(meta["input"]["scale"]),
        version=version or "latest",
        rev=found["rev"],
    )

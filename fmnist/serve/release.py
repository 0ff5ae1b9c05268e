"""Tag the committed model as a release: ``python -m fmnist.serve.release 1.2.0``.

Makes the annotated git tag ``fashion-cnn@v1.2.0`` on HEAD (the form ``dvc artifacts
get --rev v1.2.0`` resolves), its message holding the model, its test accuracy and the
hash of the params that made it. Refuses a version that is not semver, one already
released, and a HEAD whose model is not committed (dvc.lock or metrics changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess

from fmnist.core import layout
from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.registry import MODEL_ARTIFACT

SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def git(*args: str) -> str:
    """Run git; a failure is a PipelineError with git's own words."""
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


def release_tag(version: str, name: str = MODEL_ARTIFACT) -> str:
    """``fashion-cnn@v1.2.0`` for ``1.2.0`` (or ``v1.2.0``); semver only."""
    bare = version.removeprefix("v")
    if not SEMVER.fullmatch(bare):
        raise PipelineError(f"version {version!r} is not MAJOR.MINOR.PATCH, e.g. 1.2.0")
    return f"{name}@v{bare}"


def release_notes(name: str) -> str:
    """What the tag says of the model: name, architecture, test accuracy, params hash."""
    lines = [f"{name}: models/model.pt"]
    if layout.TRAIN_JSON.is_file():
        train = json.loads(layout.TRAIN_JSON.read_text()).get("train", {})
        lines.append(f"model: {train.get('model', '?')} on {train.get('device', '?')}")
    if layout.METRICS_JSON.is_file():
        test = json.loads(layout.METRICS_JSON.read_text()).get("test", {})
        lines.append(f"test accuracy: {100 * test.get('accuracy', 0):.2f} %")
    if layout.PARAMS.is_file():
        digest = hashlib.sha256(layout.PARAMS.read_bytes()).hexdigest()[:16]
        lines.append(f"params.yaml sha256: {digest}")
    return "\n".join(lines)


def release(version: str, name: str = MODEL_ARTIFACT) -> str:
    """Tag HEAD as release ``version`` of ``name``; return the tag."""
    tag = release_tag(version, name)
    if git("tag", "--list", tag):
        raise PipelineError(f"{tag} exists already; release a higher version")
    changed = git("status", "--porcelain", "--", "dvc.lock", "models", "metrics")
    if changed:
        raise PipelineError(
            f"the model's files differ from HEAD ({changed.splitlines()[0].strip()} ...); "
            "commit them (and `dvc push`) first, so the tag names what you release"
        )
    git("tag", "-a", tag, "-m", release_notes(name))
    return tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="MAJOR.MINOR.PATCH, e.g. 1.2.0")
    parser.add_argument("--artifact", default=MODEL_ARTIFACT, help="dvc.yaml artifact name")
    args = parser.parse_args()
    tag = release(args.version, args.artifact)
    print(f"tagged {tag}; share it: git push origin {tag} && dvc push")


if __name__ == "__main__":
    run_stage(main)

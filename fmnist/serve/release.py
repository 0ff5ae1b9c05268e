"""Tag the committed model as a release: ``python -m fmnist.serve.release 1.2.0``.

Writes the model's name, test accuracy and params hash into the ``meta:`` of dvc.yaml's
artifacts (a commit of its own when they changed), then makes the annotated git tag
``fashion-cnn@v1.2.0`` (the form ``dvc artifacts get --rev v1.2.0`` resolves), its
message holding the same facts. Refuses a version that is not semver, one already
released, and a HEAD whose model is not committed (dvc.lock or metrics changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from pathlib import Path

from fmnist.core import layout
from fmnist.core.errors import PipelineError, run_stage
from fmnist.serve.registry import MODEL_ARTIFACT

DVC_YAML = Path("dvc.yaml")
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


def release_meta() -> dict[str, object]:
    """What a release says of its model: architecture, test accuracy, params hash."""
    meta: dict[str, object] = {}
    if layout.TRAIN_JSON.is_file():
        meta["model"] = json.loads(layout.TRAIN_JSON.read_text()).get("train", {}).get("model")
    if layout.METRICS_JSON.is_file():
        accuracy = json.loads(layout.METRICS_JSON.read_text()).get("test", {}).get("accuracy")
        meta["test_accuracy"] = None if accuracy is None else round(100 * accuracy, 2)
    if layout.PARAMS.is_file():
        meta["params_sha256"] = hashlib.sha256(layout.PARAMS.read_bytes()).hexdigest()[:16]
    return {k: v for k, v in meta.items() if v is not None}


def write_meta(dvc_yaml: Path, meta: dict[str, object]) -> bool:
    """Set the ``meta:`` line of every artifact in ``dvc_yaml`` (one flow mapping each,
    so the file's comments survive); whether anything changed."""
    flow = "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in meta.items()) + "}"
    text = dvc_yaml.read_text()
    new = re.sub(r"(?m)^(    meta: )\{[^}\n]*\}", lambda m: m.group(1) + flow, text)
    if new != text:
        dvc_yaml.write_text(new)
    return new != text


def release(version: str, name: str = MODEL_ARTIFACT) -> str:
    """Tag HEAD as release ``version`` of ``name``; return the tag."""
    tag = release_tag(version, name)
    if git("tag", "--list", tag):
        raise PipelineError(f"{tag} exists already; release a higher version")
    changed = git("status", "--porcelain", "--", "dvc.yaml", "dvc.lock", "models", "metrics")
    if changed:
        raise PipelineError(
            f"the model's files differ from HEAD ({changed.splitlines()[0].strip()} ...); "
            "commit them (and `dvc push`) first, so the tag names what you release"
        )
    meta = release_meta()
    if write_meta(DVC_YAML, meta):  # dvc.yaml's artifacts carry the released model's facts
        git("commit", "-q", "-m", f"Release {tag}", "--", str(DVC_YAML))
    notes = "\n".join([f"{name}: models/model.pt"] + [f"{k}: {v}" for k, v in meta.items()])
    git("tag", "-a", tag, "-m", notes)
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

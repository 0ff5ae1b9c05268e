"""The model registry: a release is a git tag that `dvc artifacts get` and fmnist.load
resolve, from another directory, through a DVC remote, without this checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import save_small_model
from helpers import run

from fmnist.core.errors import PipelineError
from fmnist.data.datasets import FASHION_MNIST
from fmnist.models import build_model
from fmnist.serve.registry import load
from fmnist.serve.release import release_tag

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
DVC_YAML = """artifacts:
  fashion-cnn:
    path: models/model.pt
    type: model
    desc: test model
    labels: [fashion-mnist]
    meta: {}  # written by the release
"""


def _run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(cwd, *args, check=check, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project with a trained-looking model, released as 1.0.0 and pushed."""
    root = tmp_path_factory.mktemp("registry")
    repo = root / "project"
    (repo / "models").mkdir(parents=True)
    save_small_model(repo / "models/model.pt")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("model:\n  name: fastcnn\n")
    (repo / "metrics").mkdir()
    (repo / "metrics/metrics.json").write_text('{"test": {"accuracy": 0.9123}}')
    (repo / "metrics/train.json").write_text('{"train": {"model": "fastcnn"}}')
    for args in (
        ("git", "init", "-q"),
        ("git", "config", "user.email", "test@example.invalid"),
        ("git", "config", "user.name", "test"),
        ("dvc", "init", "-q"),
        ("dvc", "remote", "add", "-d", "store", str(root / "remote")),
        ("dvc", "add", "-q", "models/model.pt"),
        ("git", "add", "-A"),
        ("git", "commit", "-qm", "a model"),
        (sys.executable, "-m", "fmnist.serve.release", "1.0.0"),
        ("dvc", "push", "-q"),
    ):
        _run(repo, *args)
    return repo


def test_dvc_artifacts_get_fetches_a_release_by_version(project: Path, tmp_path: Path) -> None:
    _run(tmp_path, "dvc", "artifacts", "get", project.as_uri(), "fashion-cnn", "--rev", "v1.0.0")
    fetched = tmp_path / "model.pt"
    assert fetched.read_bytes() == (project / "models/model.pt").read_bytes()


def test_load_by_name_gives_a_ready_model_with_its_contract(project: Path) -> None:
    loaded = load("fashion-cnn", "v1.0.0", repo=str(project))
    assert loaded.classes == FASHION_MNIST.classes and loaded.input_shape == (1, 28, 28)
    assert loaded.scale == pytest.approx(1 / 255) and len(loaded.rev) == 40
    x = torch.rand(4, 1, 28, 28)
    original = torch.load(project / "models/model.pt", weights_only=True)["state_dict"]
    reference = build_model("fastcnn", {"width": 8})
    reference.load_state_dict(original)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), reference.eval()(x))
    assert load(repo=str(project)).rev == loaded.rev  # the latest release


def test_an_unknown_version_names_the_tags_to_look_at(project: Path) -> None:
    with pytest.raises(PipelineError, match=r"no release fashion-cnn@v9\.9\.9.*git tag --list"):
        load("fashion-cnn", "v9.9.9", repo=str(project))


def test_the_release_command_refuses_a_bad_or_repeated_version(project: Path) -> None:
    assert release_tag("1.2.0") == release_tag("v1.2.0") == "fashion-cnn@v1.2.0"
    with pytest.raises(PipelineError, match=r"not MAJOR\.MINOR\.PATCH"):
        release_tag("1.2")
    again = _run(project, sys.executable, "-m", "fmnist.serve.release", "1.0.0", check=False)
    assert again.returncode == 2 and "exists already" in again.stderr
    notes = _run(project, "git", "tag", "-n9", "--list", "fashion-cnn@v1.0.0").stdout
    assert "fashion-cnn: models/model.pt" in notes and "test_accuracy: 91.23" in notes
    # the tagged dvc.yaml carries the same facts in the artifact's meta
    tagged = _run(project, "git", "show", "fashion-cnn@v1.0.0:dvc.yaml").stdout
    meta = yaml.safe_load(tagged)["artifacts"]["fashion-cnn"]["meta"]
    assert meta["model"] == "fastcnn" and meta["test_accuracy"] == 91.23
    assert len(meta["params_sha256"]) == 16 and "# written by the release" in tagged

"""MNIST, Kuzushiji-MNIST and CIFAR-10 through the same pipeline, from files in their real
formats that the tests write; hostile archives and pickles are refused."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, synthetic_split, write_idx_folder

from fmnist.core.config import CONF, compose
from fmnist.core.errors import ChecksumError, FormatError, PipelineError
from fmnist.data import cifar
from fmnist.data.datasets import CIFAR10, DATASETS, KMNIST, MNIST, IdxFile
from fmnist.data.sources import fetch
from fmnist.models import build_model
from fmnist.models.summary import keras_param_counts


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _mnist_like(tmp: Path, spec) -> tuple[Path, object]:
    """gzipped IDX files and a spec whose .gz MD5s are theirs."""
    data = {"train": synthetic_split(300, 1), "test": synthetic_split(100, 2)}
    folder = write_idx_folder(tmp / "mirror", data)
    idx = {
        split: tuple(IdxFile(f.name, "", _md5(folder / f.name)) for f in pair)
        for split, pair in spec.idx.items()
    }
    return folder, replace(spec, idx=idx)


def _batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"synthetic",
        b"labels": [int(v) for v in np.arange(n) % 10],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * n,
    }
    return pickle.dumps(batch, protocol=2)


def _tarball(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def _cifar(tmp: Path) -> tuple[Path, object, dict[str, bytes]]:
    members = {f"data_batch_{i}": _batch(60, i) for i in range(1, 6)}
    members["test_batch"] = _batch(100, 9)
    (tmp / "mirror").mkdir()
    _tarball(tmp / "mirror" / CIFAR10.archive.name, members)
    archive = replace(CIFAR10.archive, batches={k: cifar.md5(v) for k, v in members.items()})
    return tmp / "mirror", replace(CIFAR10, archive=archive), members


def _pipeline(root: Path, spec, folder: Path, model: str, monkeypatch) -> dict:
    """download -> prepare -> train -> evaluate, in-process, in ``root`` (the cwd)."""
    monkeypatch.setitem(DATASETS, spec.name, spec)
    overrides = [f"model={model}", "model.epochs=1", "prepare.val_size=50"]
    params = compose([*overrides, f"data.dataset={spec.name}"], ROOT / CONF)
    params["data"]["folder"] = str(folder)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("download", "prepare", "train", "evaluate"):
        importlib.import_module(f"stages.{stage}").main()
    return json.loads((root / "metrics/metrics.json").read_text())["test"]


@pytest.mark.parametrize(("spec", "first_class"), [(MNIST, "0"), (KMNIST, "o")])
def test_mnist_family_runs_through_the_pipeline(in_tmp: Path, monkeypatch, spec, first_class):
    folder, spec = _mnist_like(in_tmp, spec)
    test = _pipeline(in_tmp, spec, folder, "cnn1", monkeypatch)
    assert test["per_class"][first_class]["support"] == 10
    data = json.loads((in_tmp / "metrics/data.json").read_text())["data"]
    assert data["dataset"] == spec.name and data["train"]["count"] == 250


def test_cifar10_runs_through_the_pipeline(in_tmp: Path, monkeypatch) -> None:
    folder, spec, _ = _cifar(in_tmp)
    test = _pipeline(in_tmp, spec, folder, "cifar-cnn", monkeypatch)
    assert set(test["per_class"]) == set(CIFAR10.classes)
    data = json.loads((in_tmp / "metrics/data.json").read_text())["data"]
    assert data["train"]["shape"] == [250, 32, 32, 3] and data["train"]["dtype"] == "uint8"
    checkpoint = torch.load(in_tmp / "models/model.pt", weights_only=True)
    assert checkpoint["input"]["shape"] == [3, 32, 32] and checkpoint["classes"][0] == "airplane"


def test_cifar_cnn_on_cifar10_has_report_e_parameter_count() -> None:
    model = build_model("cifar-cnn", in_shape=CIFAR10.shape)
    assert sum(keras_param_counts(model)) == 122_570


def test_extracted_cifar_batches_are_accepted(tmp_path: Path) -> None:
    _, spec, members = _cifar(tmp_path)
    extracted = tmp_path / "extracted" / "cifar-10-batches-py"
    extracted.mkdir(parents=True)
    for name, data in members.items():
        (extracted / name).write_bytes(data)
    fetched = fetch(spec, tmp_path / "raw", "folder", str(tmp_path / "extracted"))
    assert fetched.form == "cifar-batches" and len(fetched.checksums) == 6


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../evil.sh"), "escapes the archive"),
        (tarfile.TarInfo("/etc/evil"), "escapes the archive"),
        (tarfile.TarInfo("cifar-10-batches-py/link"), "is a link"),
    ],
)
def test_hostile_tarball_is_refused(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    if member.name.endswith("link"):
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        member.size = 3
    _, spec, members = _cifar(tmp_path)
    path = _tarball(tmp_path / "mirror" / CIFAR10.archive.name, members, [member])
    with pytest.raises(FormatError, match=message):
        fetch(spec, tmp_path / "raw", "folder", str(path.parent))
    assert not (tmp_path / "raw").exists()
    assert not (tmp_path / "evil.sh").exists()


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_with_a_forbidden_type_is_refused(tmp_path: Path) -> None:
    data = pickle.dumps({b"data": _Exploit(), b"labels": [0]}, protocol=2)
    with pytest.raises(FormatError, match=r"refers to (posix|os)\.system"):
        cifar.load_batch(data, "data_batch_1")
    assert not Path("pwned.txt").exists()


def test_uncompressed_mnist_cannot_be_verified(tmp_path: Path) -> None:
    data = {"train": synthetic_split(20, 1), "test": synthetic_split(10, 2)}
    folder = write_idx_folder(tmp_path / "plain", data, gz=False)
    with pytest.raises(ChecksumError, match=r"only the publisher's \.gz checksum is known"):
        fetch(MNIST, tmp_path / "raw", "folder", str(folder))


def test_wrong_mnist_gz_names_expected_md5(tmp_path: Path) -> None:
    data = {"train": synthetic_split(20, 1), "test": synthetic_split(10, 2)}
    folder = write_idx_folder(tmp_path / "gz", data)
    with pytest.raises(ChecksumError, match=MNIST.idx["train"][0].gz_md5):
        fetch(MNIST, tmp_path / "raw", "folder", str(folder))


def test_model_that_cannot_take_the_shape_says_so() -> None:
    with pytest.raises(PipelineError, match="cannot be built"):
        build_model("cnn3", in_shape=(3, 8, 8))

"""The download stage's sources: folder (IDX or CSV) and URL, verified, all or nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import spec_for, write_csv_folder, write_idx_folder

from fmnist.core.errors import ChecksumError, PipelineError
from fmnist.data import formats
from fmnist.data.sources import fetch


def test_fetch_idx_from_folder(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    mirror = write_idx_folder(tmp_path / "mirror", tiny_data)
    fetched = fetch(tiny_spec, tmp_path / "raw", source="folder", folder=str(mirror))
    assert fetched.form == "idx"
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(tiny_spec.idx_names())
    assert set(fetched.checksums.values()) == {f.sha256 for p in tiny_spec.idx.values() for f in p}


def test_fetch_uncompressed_idx(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    mirror = write_idx_folder(tmp_path / "mirror", tiny_data, gz=False)
    assert fetch(tiny_spec, tmp_path / "raw", "folder", str(mirror)).form == "idx"


def test_fetch_kaggle_csv_from_folder(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    mirror = write_csv_folder(tmp_path / "kaggle", tiny_data)
    fetched = fetch(tiny_spec, tmp_path / "raw", source="auto", folder=str(mirror))
    assert fetched.form == "csv"
    assert (tmp_path / "raw" / "fashion-mnist_train.csv").is_file()


def test_csv_in_another_order_still_verifies(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    images, labels = tiny_data["train"]
    order = np.random.default_rng(3).permutation(len(labels))
    shuffled = {**tiny_data, "train": (images[order], labels[order])}
    mirror = write_csv_folder(tmp_path / "kaggle", shuffled)
    assert fetch(tiny_spec, tmp_path / "raw", "folder", str(mirror)).form == "csv"


def test_checksum_mismatch_names_file_and_writes_nothing(tmp_path: Path, tiny_data: dict) -> None:
    spec = spec_for(tiny_data)
    images, labels = tiny_data["test"]
    corrupt = {**tiny_data, "test": (images ^ 1, labels)}
    mirror = write_idx_folder(tmp_path / "mirror", corrupt)
    with pytest.raises(ChecksumError) as err:
        fetch(spec, tmp_path / "raw", "folder", str(mirror))
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert spec.idx["test"][0].sha256 in message  # expected
    assert formats.sha256_bytes(formats.encode_idx(images ^ 1)) in message  # actual
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]  # no temporary left behind


def test_failed_fetch_keeps_previous_output(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    good = write_idx_folder(tmp_path / "good", tiny_data)
    fetch(tiny_spec, tmp_path / "raw", "folder", str(good))
    before = {p.name: p.read_bytes() for p in (tmp_path / "raw").iterdir()}
    bad = write_idx_folder(tmp_path / "bad", tiny_data)
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08")
    with pytest.raises(PipelineError):
        fetch(tiny_spec, tmp_path / "raw", "folder", str(bad))
    assert {p.name: p.read_bytes() for p in (tmp_path / "raw").iterdir()} == before


def test_folder_without_the_files_is_refused(tmp_path: Path, tiny_spec) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="no complete copy of fashion-mnist"):
        fetch(tiny_spec, tmp_path / "raw", "folder", str(tmp_path / "empty"))


def test_download_from_url(tmp_path: Path, tiny_data: dict, tiny_spec) -> None:
    mirror = write_idx_folder(tmp_path / "site", tiny_data)
    fetched = fetch(tiny_spec, tmp_path / "raw", "url", url=mirror.as_uri())
    assert fetched.form == "idx" and len(fetched.checksums) == 4


def test_unreachable_url_is_a_clear_error(tmp_path: Path, tiny_spec) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(PipelineError, match=r"cannot download .*dataset-fashion-mnist"):
        fetch(tiny_spec, tmp_path / "raw", "auto", url=missing)  # no local copy: the URL
    assert not (tmp_path / "raw").exists()


def test_real_debian_files_verify(tmp_path: Path) -> None:
    """The constants in the code match Debian's dataset-fashion-mnist (installed by CI)."""
    from fmnist.data.datasets import FASHION_MNIST

    fetched = fetch(FASHION_MNIST, tmp_path / "raw", "folder", FASHION_MNIST.debian_folder)
    assert len(fetched.checksums) == 4

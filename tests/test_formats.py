"""The IDX and CSV readers: round trips, and clear refusals of broken files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from fmnist.core.errors import FormatError
from fmnist.data import formats


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path: Path, suffix: str, dtype: type) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    formats.write_idx(path, array)
    back = formats.read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    formats.write_idx(tmp_path / "a.gz", array)
    formats.write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_truncated_idx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.idx"
    path.write_bytes(formats.encode_idx(np.zeros((10, 28, 28), np.uint8))[:-100])
    with pytest.raises(FormatError, match=r"truncated.*re-download"):
        formats.read_idx(path)


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    formats.write_idx(path, np.random.default_rng(0).integers(0, 255, (50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(FormatError, match=r"t\.gz: cannot read"):
        formats.read_idx(path)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 4) + b"abcd")
    with pytest.raises(FormatError, match="wrong magic"):
        formats.read_idx(path)


def test_unknown_type_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 4) + b"abcd")
    with pytest.raises(FormatError, match="type code 0x07"):
        formats.read_idx(path)


def test_forged_header_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "forged.idx.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">3I", 10**9, 1000, 1000) + b"\x00" * 10)
    with pytest.raises(FormatError, match="claims"):
        formats.read_idx(path)


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.idx"
    path.write_bytes(formats.encode_idx(np.zeros(4, np.uint8)) + b"xx")
    with pytest.raises(FormatError, match="trailing"):
        formats.read_idx(path)


def test_csv_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    path = tmp_path / "f.csv"
    formats.write_csv(path, images, labels)
    assert path.read_text().splitlines()[0] == formats.csv_header()
    back_images, back_labels = formats.read_csv(path)
    np.testing.assert_array_equal(back_images, images)
    np.testing.assert_array_equal(back_labels, labels)


def _csv_with_row(tmp_path: Path, row: str, position: int = 3) -> Path:
    images = np.zeros((5, 28, 28), np.uint8)
    path = tmp_path / "f.csv"
    formats.write_csv(path, images, np.arange(5, dtype=np.uint8))
    lines = path.read_text().splitlines()
    lines[position - 1] = row
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1," + ",".join(["0"] * 783), r"f\.csv:3: bad row: expected 785 integer fields"),
        ("1," + ",".join(["0"] * 785), r"f\.csv:3: bad row"),
        ("1," + ",".join(["0"] * 783) + ",abc", r"f\.csv:3: bad row"),
        ("1," + ",".join(["0"] * 783) + ",1.5", r"f\.csv:3: bad row"),
        ("10," + ",".join(["0"] * 784), r"f\.csv:3: label 10 is not in 0-9"),
        ("1," + ",".join(["0"] * 783) + ",256", r"f\.csv:3: a pixel is not in 0-255"),
        ("1," + ",".join(["0"] * 783) + ",-1", r"f\.csv:3: a pixel is not in 0-255"),
    ],
)
def test_bad_csv_row_is_named_by_line(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        formats.read_csv(_csv_with_row(tmp_path, row))


def test_csv_without_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("1," + ",".join(["0"] * 784) + "\n")
    with pytest.raises(FormatError, match="expected the header"):
        formats.read_csv(path)


def test_binary_file_as_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"label,pixel1\n\xff\xfe\x00garbage")
    with pytest.raises(FormatError, match="not a text CSV"):
        formats.read_csv(path)


def test_records_fingerprint_ignores_order_but_not_content() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 20).astype(np.uint8)
    order = rng.permutation(20)
    fp = formats.records_fingerprint(images, labels)
    assert fp == formats.records_fingerprint(images[order], labels[order])
    labels[0] = (labels[0] + 1) % 10
    assert fp != formats.records_fingerprint(images, labels)

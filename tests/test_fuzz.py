"""Property-based tests: any bytes are either read correctly or refused with our error.

Never a crash with an unrelated exception, a hang, or a huge allocation from a forged
header (sizes are checked against the bytes present before anything is allocated).
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmnist.core.errors import FormatError
from fmnist.data import formats
from fmnist.serve.images import ImageError, load_image, to_dataset_convention

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TMP = Path(tempfile.mkdtemp(prefix="fmnist-fuzz-"))


def _write(data: bytes, name: str) -> Path:
    path = TMP / name
    path.write_bytes(data)
    return path


@st.composite
def idx_like(draw: st.DrawFn) -> bytes:
    """Bytes that start like an IDX file (valid or forged header), then anything."""
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]))
    ndim = draw(st.integers(0, 6))
    dims = draw(st.lists(st.integers(0, 2**32 - 1), min_size=ndim, max_size=ndim))
    head = bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *dims)
    cut = draw(st.integers(0, len(head)))
    return head[:cut] + draw(st.binary(max_size=300))


@FUZZ
@given(st.one_of(st.binary(max_size=400), idx_like()), st.booleans())
def test_idx_reader_parses_or_refuses_any_bytes(data: bytes, gz: bool) -> None:
    payload = gzip.compress(data, mtime=0) if gz else data
    path = _write(payload, "f.gz" if gz else "f.idx")
    try:
        array = formats.read_idx(path)
    except FormatError:
        return
    assert formats.encode_idx(array) == data  # what parses round-trips exactly


@FUZZ
@given(st.integers(1, 4), st.integers(10**6, 2**32 - 1))
@pytest.mark.slow
def test_forged_header_is_refused_without_allocating(ndim: int, big: int) -> None:
    header = bytes([0, 0, 0x0D, ndim]) + struct.pack(f">{ndim}I", *([big] * ndim))
    path = _write(header + b"\x00" * 64, "forged.idx")
    try:
        formats.read_idx(path)
    except FormatError as exc:
        assert "claims" in str(exc) or "promises" in str(exc)
    else:
        raise AssertionError("a forged header was accepted")


def test_empty_array_with_absurd_dimensions_is_refused() -> None:
    """Found by the fuzz test: a zero dimension made the size 0, numpy then refused the rest."""
    data = b"\x00\x00\x08\x04" + struct.pack(">4I", 0, 2, 0x52000000, 0xC7CE0C7D)
    with pytest.raises(FormatError, match="claims"):
        formats.read_idx(_write(data, "empty.idx"))


@st.composite
def csv_like(draw: st.DrawFn) -> str:
    """A CSV that is valid, or a valid one with one line damaged."""
    rows = draw(st.integers(1, 4))
    lines = [formats.csv_header()]
    for _ in range(rows):
        label = draw(st.integers(-2, 12))
        pixels = [0] * 784  # a few drawn pixels on a blank row: cheap, and hits every check
        for index, value in draw(
            st.lists(st.tuples(st.integers(0, 783), st.integers(-5, 300)), max_size=6)
        ):
            pixels[index] = value
        lines.append(",".join(map(str, [label, *pixels])))
    if draw(st.booleans()):
        i = draw(st.integers(0, len(lines) - 1))
        junk = draw(st.text(alphabet='0123456789,.-ab \\t"', max_size=40))
        lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))] + junk
    return "\n".join(lines) + "\n"


@FUZZ
@given(st.one_of(csv_like(), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_csv_reader_parses_or_refuses_anything(text: str) -> None:
    path = TMP / "f.csv"
    path.write_bytes(text.encode("latin-1", errors="replace"))
    try:
        images, labels = formats.read_csv(path)
    except FormatError:
        return
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert labels.max() <= 9 and len(labels) == len(images)


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015e0c3f6b0000000049454e44ae426082"
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=60).map(lambda tail: PNG_1X1[:40] + tail),  # a PNG cut and garbled
        st.integers(0, len(PNG_1X1)).map(lambda n: PNG_1X1[:n]),  # a PNG truncated anywhere
    )
)
def test_image_loader_loads_or_refuses_any_bytes(data: bytes) -> None:
    path = _write(data, "picture.png")
    try:
        image = load_image(path)
    except ImageError:
        return
    array = to_dataset_convention(image)
    assert array.shape == (28, 28) and array.dtype == np.uint8

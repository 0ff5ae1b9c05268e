"""IDX and Kaggle-CSV readers and writers, and content checksums. Pure numpy, no torch.

The readers trust nothing: every header field is checked against the bytes actually
present before anything is allocated, so a truncated file or a forged header is refused
with a one-line :class:`FormatError` instead of a crash or a huge allocation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from fmnist.core.errors import FormatError

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_IDX_BYTES = 1 << 31  # 2 GiB: far above any MNIST-family file, far below a forged header
CSV_PIXELS = 784


def open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading bytes, transparently decompressing ``.gz`` files."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_idx_bytes(path: str | Path, max_items: int | None = None) -> bytearray:
    """Return the decompressed IDX bytes of ``path``, checking the header's size claim.

    ``max_items`` (from the dataset spec: 60,000 training images, say) bounds the first
    dimension, so a small gzip whose header claims millions of images is refused before
    anything is decompressed. The payload is read into one buffer of exactly the promised
    size (plus one byte, to detect trailing data): one copy, never more than promised.
    """
    path = Path(path)
    try:
        with open_maybe_gzip(path) as f:
            head = f.read(4)
            _check_magic(head, path)
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise FormatError(f"{path}: truncated IDX header; re-download the file")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            if max_items is not None and dims[0] > max_items:
                raise FormatError(
                    f"{path}: header claims {dims[0]:,} items, more than the {max_items:,} "
                    "this dataset's file holds; re-download the file"
                )
            size = _payload_size(head[2], dims, path)
            start = len(head) + len(dims_raw)
            buffer = bytearray(start + size + 1)
            buffer[:start] = head + dims_raw
            got = _read_into(f, memoryview(buffer)[start:])
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(f"{path}: cannot read ({exc}); re-download the file") from None
    if got < size:
        raise FormatError(
            f"{path}: truncated: header promises {size} data bytes, file has {got}; "
            "re-download the file"
        )
    if got > size:
        raise FormatError(f"{path}: trailing bytes after the IDX data; re-download the file")
    del buffer[-1:]  # the probe byte: shrinking a bytearray at its end copies nothing
    return buffer


def _read_into(f: io.BufferedIOBase, view: memoryview) -> int:
    """Fill ``view`` from ``f`` as far as the data goes; the number of bytes read."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _check_magic(head: bytes, path: Path) -> None:
    if len(head) < 4 or head[0:2] != b"\x00\x00":
        raise FormatError(f"{path}: not an IDX file (wrong magic number); check the file name")
    if head[2] not in IDX_DTYPES:
        raise FormatError(f"{path}: unknown IDX type code 0x{head[2]:02x}; file is corrupt")
    if not 1 <= head[3] <= 4:
        raise FormatError(f"{path}: IDX file claims {head[3]} dimensions (1-4 allowed)")


def _payload_size(code: int, dims: tuple[int, ...], path: Path) -> int:
    """Data bytes the header promises. The nonzero dimensions are bounded too: an empty
    array whose other dimensions multiply past memory is as corrupt as a huge one (and
    numpy refuses to shape it)."""
    itemsize = IDX_DTYPES[code].itemsize
    span = itemsize
    for d in dims:
        span *= max(d, 1)
    if span > MAX_IDX_BYTES:
        raise FormatError(f"{path}: IDX header claims {span} bytes (dims {dims}); file is corrupt")
    return span if all(dims) else 0


def parse_idx(data: bytes | bytearray, name: str = "<bytes>") -> np.ndarray:
    """Parse complete IDX bytes (as returned by :func:`read_idx_bytes`) into an array."""
    path = Path(name)
    _check_magic(data[:4], path)
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise FormatError(f"{name}: truncated IDX header; re-download the file")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    size = _payload_size(data[2], dims, path)
    payload = memoryview(data)[4 + 4 * ndim :]  # a view: slicing bytes would copy them
    if len(payload) != size:
        raise FormatError(
            f"{name}: header promises {size} data bytes, file has {len(payload)}; "
            "re-download the file"
        )
    array = np.frombuffer(payload, dtype=IDX_DTYPES[data[2]]).reshape(dims)
    return array.astype(array.dtype.newbyteorder("="), copy=False)  # uint8: no second copy


def read_idx(path: str | Path, max_items: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-endian numpy array."""
    return parse_idx(read_idx_bytes(path, max_items), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX bytes (the inverse of :func:`parse_idx`)."""
    code = next((c for c, dt in IDX_DTYPES.items() if dt == array.dtype.newbyteorder(">")), None)
    if code is None:
        raise FormatError(f"cannot write dtype {array.dtype} as IDX")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX; gzipped when the name ends in ``.gz`` (mtime 0: reproducible)."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
            f.write(data)
    else:
        path.write_bytes(data)


def csv_header() -> str:
    """The Kaggle header line: ``label,pixel1,...,pixel784``."""
    return "label," + ",".join(f"pixel{i}" for i in range(1, CSV_PIXELS + 1))


def read_csv(path: str | Path, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle-form CSV into uint8 images (N, side, side) and uint8 labels (N,).

    Every row must hold 1 + side*side integer fields, the label in 0-9 and each pixel in
    0-255; the first bad row is named by its line number.
    """
    path = Path(path)
    fields = 1 + side * side
    try:
        # utf-8-sig: a spreadsheet's export starts with a byte-order mark; skip it
        with open(path, encoding="utf-8-sig", errors="strict") as f:
            header = f.readline().strip()
            if not header:
                raise FormatError(f"{path}: the file is empty; re-download or re-export it")
            if header.split(",")[0].strip().strip('"') != "label":
                raise FormatError(
                    f"{path}:1: expected the header 'label,pixel1,...'; is this a Kaggle CSV?"
                )
            rows = [_csv_row(line, lineno, fields, path) for lineno, line in enumerate(f, 2)]
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text CSV file (bytes that are not UTF-8)") from None
    rows = [r for r in rows if r is not None]
    if not rows:
        raise FormatError(f"{path}: no data rows after the header")
    table = np.stack(rows)
    _check_csv_ranges(table, path)
    labels = table[:, 0].astype(np.uint8)
    images = table[:, 1:].astype(np.uint8).reshape(-1, side, side)
    return images, labels


def _csv_row(line: str, lineno: int, fields: int, path: Path) -> np.ndarray | None:
    if not line.strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # older numpy warns on unparsable text
            values = np.fromstring(line, dtype=np.int64, sep=",")
    except ValueError:  # numpy >= 2.3 raises on unparsable text
        values = np.empty(0, np.int64)
    if values.size != fields or line.count(",") != fields - 1 or "." in line:
        raise FormatError(
            f"{path}:{lineno}: bad row: expected {fields} integer fields; fix or remove the line"
        )
    return values


def _check_csv_ranges(table: np.ndarray, path: Path) -> None:
    bad_label = np.flatnonzero((table[:, 0] < 0) | (table[:, 0] > 9))
    if bad_label.size:
        i = bad_label[0]
        raise FormatError(f"{path}:{i + 2}: label {table[i, 0]} is not in 0-9; fix the row")
    bad_pixel = np.flatnonzero(((table[:, 1:] < 0) | (table[:, 1:] > 255)).any(axis=1))
    if bad_pixel.size:
        raise FormatError(f"{path}:{bad_pixel[0] + 2}: a pixel is not in 0-255; fix the row")


def write_csv(path: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images and labels in the Kaggle CSV form."""
    flat = images.reshape(len(images), -1)
    table = np.concatenate([labels.reshape(-1, 1).astype(np.int64), flat], axis=1)
    with open(path, "w", encoding="ascii") as f:
        f.write(csv_header() + "\n")
        np.savetxt(f, table, fmt="%d", delimiter=",")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def records_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """An order-independent SHA-256 of (label, image) records.

    The Kaggle CSV holds the same images as the IDX files but not necessarily in the same
    order, so its content is verified as the sorted multiset of per-record digests.
    """
    flat = np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.uint8)
    labs = np.asarray(labels, dtype=np.uint8)
    digests = sorted(
        hashlib.sha256(bytes([int(y)]) + x.tobytes()).digest()
        for x, y in zip(flat, labs, strict=True)
    )
    return hashlib.sha256(b"".join(digests)).hexdigest()

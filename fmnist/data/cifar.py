"""The CIFAR-10 python-pickle tarball, read without trusting it.

The archive is never extracted to disk: members are checked (no absolute or ``..`` paths,
no links or devices, sizes within limits) and read into memory, and each batch is
unpickled by a restricted unpickler that builds only numpy arrays, dtypes and plain
containers; anything else (the way a malicious pickle runs code) is refused.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from fmnist.core.errors import FormatError

MAX_MEMBER_BYTES = 200 << 20  # a CIFAR-10 batch is ~31 MB
MAX_TOTAL_BYTES = 400 << 20
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled numpy array needs."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED_GLOBALS:
            raise FormatError(
                f"pickle refers to {module}.{name}, which a CIFAR batch never does; "
                "refusing to load it (it could run code)"
            )
        if module == "numpy.core.multiarray":  # numpy 2 moved it; old pickles name the old path
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def load_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> uint8 images (N, 32, 32, 3) and int64 labels (N,)."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except FormatError:
        raise
    except Exception as exc:  # any other failure: a corrupt or foreign pickle
        raise FormatError(f"{name}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise FormatError(f"{name}: not a CIFAR-10 batch (a {type(batch).__name__})")
    images, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2:
        raise FormatError(f"{name}: 'data' is not a uint8 matrix")
    if images.shape[1] != 3 * 32 * 32 or not isinstance(labels, list):
        raise FormatError(f"{name}: expected rows of 3072 pixels and a list of labels")
    try:
        labels_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise FormatError(f"{name}: labels are not integers") from None
    if labels_array.ndim != 1 or len(labels_array) != len(images):
        raise FormatError(f"{name}: {len(labels_array)} labels for {len(images)} images")
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() > 9):
        raise FormatError(f"{name}: labels outside 0-9")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels_array


def safe_members(path: Path) -> dict[str, bytes]:
    """Every regular file of the tarball by base name, after checking every member."""
    out: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                _check_member(member, path)
                if not member.isfile():
                    continue
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise FormatError(f"{path}: archive holds over {MAX_TOTAL_BYTES >> 20} MB")
                f = tar.extractfile(member)
                out[PurePosixPath(member.name).name] = f.read() if f else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FormatError(
            f"{path}: not a readable tar.gz archive ({exc}); download it again"
        ) from None
    return out


def _check_member(member: tarfile.TarInfo, path: Path) -> None:
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        raise FormatError(f"{path}: member {member.name!r} escapes the archive; refusing it")
    if member.issym() or member.islnk():
        raise FormatError(f"{path}: member {member.name!r} is a link; refusing the archive")
    if not (member.isfile() or member.isdir()):
        raise FormatError(f"{path}: member {member.name!r} is a special file; refusing it")
    if member.size > MAX_MEMBER_BYTES:
        raise FormatError(f"{path}: member {member.name!r} is {member.size} bytes; too large")


def read_batches(files: dict[str, bytes]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': ..., 'test': ...} from the six batch files' bytes."""
    missing = [b for b in BATCHES if b not in files]
    if missing:
        raise FormatError(f"CIFAR-10 batches missing: {', '.join(missing)}")
    train = [load_batch(files[b], b) for b in TRAIN_BATCHES]
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": load_batch(files[TEST_BATCH], TEST_BATCH),
    }


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()

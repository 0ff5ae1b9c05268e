"""The published order of a dataset's records, for the forms that do not keep it.

The stratified split depends on the order of the records, and the Kaggle CSVs hold the
IDX files' records in another order (a shuffled copy passes the content check too), so
the same data gave another split and other metrics. Records are put back in the IDX
files' order before splitting: sorted by the digest of (label, image), then arranged by
a permutation shipped per split (``order/<fingerprint>.npy``, made by
``python -m fmnist.data.order`` from the verified IDX files). Data whose fingerprint has
no shipped permutation (a dataset without one, a test's synthetic data) keeps its order.

    python -m fmnist.data.order [IDX_FOLDER]     # rewrite the permutations
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST, DatasetSpec

FOLDER = Path(__file__).with_name("order")


def digests(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """SHA-256 of each (label, image) record, as the fingerprint hashes them."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.uint8)
    labs = np.asarray(labels, dtype=np.uint8)
    records = zip(flat, labs, strict=True)
    return np.array(
        [hashlib.sha256(bytes([int(y)]) + x.tobytes()).digest() for x, y in records],
        dtype="S32",
    )


def _file(fingerprint: str) -> Path:
    return FOLDER / f"{fingerprint[:16]}.npy"


def in_published_order(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The records in the published (IDX) order where a permutation is shipped for them;
    as they are otherwise."""
    fingerprint = formats.records_fingerprint(images, labels)
    path = _file(fingerprint)
    if not path.is_file():
        return images, labels
    arrangement = np.load(path, allow_pickle=False)
    if len(arrangement) != len(labels):
        return images, labels
    order = np.argsort(digests(images, labels), kind="stable")[arrangement]
    return images[order], labels[order]


def write(spec: DatasetSpec, folder: Path) -> list[Path]:
    """The permutation of each split of ``spec``'s IDX files in ``folder``."""
    written = []
    for images_file, labels_file in spec.idx.values():
        images = formats.read_idx(folder / images_file.name)
        labels = formats.read_idx(folder / labels_file.name)
        by_digest = np.argsort(digests(images, labels), kind="stable")
        arrangement = np.argsort(by_digest, kind="stable").astype(np.uint16)
        path = _file(formats.records_fingerprint(images, labels))
        path.parent.mkdir(exist_ok=True)
        np.save(path, arrangement, allow_pickle=False)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path(FASHION_MNIST.debian_folder))
    for path in write(FASHION_MNIST, parser.parse_args().folder):
        print(path)


if __name__ == "__main__":
    main()

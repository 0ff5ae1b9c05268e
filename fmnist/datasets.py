"""What each dataset is: file names, official URL, content checksums, class names, shape.

Checksums are of the *decompressed* content, because mirrors (Debian's
``dataset-fashion-mnist`` among them) recompress the publisher's ``.gz`` files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset and the SHA-256 of its decompressed bytes."""

    name: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the download and prepare stages need to know about a dataset."""

    name: str
    url: str
    # split -> (images file, labels file)
    idx: dict[str, tuple[IdxFile, IdxFile]]
    # split -> (Kaggle CSV name, order-independent fingerprint of its records)
    csv: dict[str, tuple[str, str]]
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # channels, height, width
    debian_folder: str

    def idx_names(self) -> list[str]:
        """The IDX file names, in the order train images, train labels, test images, ..."""
        return [f.name for pair in self.idx.values() for f in pair]


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    idx={
        "train": (
            IdxFile(
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            IdxFile(
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
        ),
        "test": (
            IdxFile(
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            IdxFile(
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ),
    },
    csv={
        "train": (
            "fashion-mnist_train.csv",
            "0c69d5cdeb902b69084012f812f066de080317bb3c64f43ca87f910d8ec86906",
        ),
        "test": (
            "fashion-mnist_test.csv",
            "90c92c0507755a7d443edde8297ce4d0f131e42884e2e87e7fc9b81ffe215258",
        ),
    },
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    shape=(1, 28, 28),
    debian_folder="/usr/share/datasets/fashion-mnist",
)

DATASETS: dict[str, DatasetSpec] = {FASHION_MNIST.name: FASHION_MNIST}

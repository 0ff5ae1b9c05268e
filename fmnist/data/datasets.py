"""What each dataset is: file names, official URL, checksums, class names, image shape.

Content checksums are of the *decompressed* bytes where known, because mirrors (Debian's
``dataset-fashion-mnist`` among them) recompress the publisher's ``.gz`` files. For
MNIST and Kuzushiji-MNIST only the publisher's ``.gz`` MD5s are published, so those files
are verified as downloaded (gzipped, byte for byte); CIFAR-10's batch files carry MD5s.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IdxFile:
    """One IDX file: its name and checksums (either one that matches verifies it)."""

    name: str
    sha256: str = ""  # of the decompressed content
    gz_md5: str = ""  # of the publisher's .gz bytes


@dataclass(frozen=True)
class CifarArchive:
    """The CIFAR python tarball and the MD5 of each batch file inside it."""

    name: str
    md5: str
    folder: str
    batches: dict[str, str]  # batch file name -> MD5


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the download and prepare stages need to know about a dataset."""

    name: str
    url: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # channels, height, width
    # split -> (images file, labels file), for the IDX datasets
    idx: dict[str, tuple[IdxFile, IdxFile]] = field(default_factory=dict)
    # split -> (Kaggle CSV name, order-independent fingerprint of its records)
    csv: dict[str, tuple[str, str]] = field(default_factory=dict)
    archive: CifarArchive | None = None
    debian_folder: str = ""  # a local copy a Debian package installs, if any
    # images per published split: bounds what a file may claim before it is decompressed
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 60_000, "test": 10_000})

    def idx_names(self) -> list[str]:
        """The IDX file names, in the order train images, train labels, test images, ..."""
        return [f.name for pair in self.idx.values() for f in pair]


def _idx(prefix: str, md5s: tuple[str, str], sha256s: tuple[str, str] = ("", "")) -> tuple:
    return (
        IdxFile(f"{prefix}-images-idx3-ubyte.gz", sha256s[0], md5s[0]),
        IdxFile(f"{prefix}-labels-idx1-ubyte.gz", sha256s[1], md5s[1]),
    )


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    idx={
        "train": _idx(
            "train",
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe"),
            (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
        ),
        "test": _idx(
            "t10k",
            ("bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
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

MNIST = DatasetSpec(
    name="mnist",
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",  # yann.lecun.com's mirror
    idx={
        "train": _idx(
            "train", ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432")
        ),
        "test": _idx(
            "t10k", ("9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
        ),
    },
    classes=tuple(str(d) for d in range(10)),
    shape=(1, 28, 28),
)

KMNIST = DatasetSpec(
    name="kmnist",
    url="http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    idx={
        "train": _idx(
            "train", ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344")
        ),
        "test": _idx(
            "t10k", ("5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134")
        ),
    },
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    shape=(1, 28, 28),
)

CIFAR10 = DatasetSpec(
    name="cifar10",
    sizes={"train": 50_000, "test": 10_000},
    url="https://www.cs.toronto.edu/~kriz/",
    archive=CifarArchive(
        name="cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        batches={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
        },
    ),
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    shape=(3, 32, 32),
)

DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (FASHION_MNIST, MNIST, KMNIST, CIFAR10)}

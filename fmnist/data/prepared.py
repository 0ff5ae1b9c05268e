"""The prepared data: raw files -> seeded stratified splits stored as compact uint8 arrays.

Contract: one ``.npz`` per split (train, val, test) holding ``images`` uint8 (N, H, W)
for grayscale or (N, H, W, C) for colour, and ``labels`` int64 (N,); nothing float on
disk. Loaded with
``allow_pickle=False``, so a prepared file can never run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from fmnist.core.atomic import atomic_path
from fmnist.core.errors import FormatError, PipelineError
from fmnist.data import cifar, formats
from fmnist.data.datasets import DatasetSpec
from fmnist.data.order import in_published_order
from fmnist.data.sources import find_in_folder

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Images (uint8) and labels (int64) of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __add__(self, other: Split) -> Split:
        """Both splits' images, this one's first (for training on train + val)."""
        return Split(
            np.concatenate([self.images, other.images]), np.concatenate([self.labels, other.labels])
        )


def read_raw(spec: DatasetSpec, raw: Path) -> tuple[dict[str, Split], str]:
    """Read the published train and test sets from ``raw`` (IDX or Kaggle CSV form)."""
    found = find_in_folder(spec, raw)
    if found is None:
        raise PipelineError(f"{raw}: no raw {spec.name} files; run the download stage first")
    form, paths = found
    if form.startswith("cifar"):
        files = (
            cifar.safe_members(paths[0])
            if form == "cifar-archive"
            else {p.name: p.read_bytes() for p in paths}
        )
        arrays = cifar.read_batches(files)
        return {k: _checked(spec, k, *arrays[k]) for k in ("train", "test")}, form
    splits = {}
    for split in ("train", "test"):
        if form == "idx":
            images_file, labels_file = spec.idx[split]
            most = spec.sizes[split]
            images = formats.read_idx(_existing(raw, images_file.name), max_items=most)
            labels = formats.read_idx(_existing(raw, labels_file.name), max_items=most)
        else:  # the CSVs hold the records in another order: split them as the IDX files
            images, labels = formats.read_csv(raw / spec.csv[split][0], side=spec.shape[1])
            images, labels = in_published_order(images, labels)
        splits[split] = _checked(spec, split, images, labels)
    return splits, form


def _existing(raw: Path, name: str) -> Path:
    path = raw / name
    return path if path.is_file() else raw / name.removesuffix(".gz")


def _checked(spec: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray) -> Split:
    c, h, w = spec.shape
    want = (h, w) if c == 1 else (h, w, c)
    if images.dtype != np.uint8 or images.shape[1:] != want:
        raise FormatError(
            f"{split} images are {images.dtype} {images.shape[1:]}, expected uint8 {want}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise FormatError(f"{split}: {len(labels)} labels for {len(images)} images")
    if labels.size and int(labels.max()) >= len(spec.classes):
        raise FormatError(f"{split}: label {int(labels.max())} >= {len(spec.classes)} classes")
    return Split(images, labels.astype(np.int64))


def stratified_subset(split: Split, size: int, seed: int) -> Split:
    """A seeded, class-balanced subset of ``size`` items (all of them if size is 0)."""
    if not size or size >= len(split):
        return split
    idx, _ = train_test_split(
        np.arange(len(split)), train_size=size, stratify=split.labels, random_state=seed
    )
    idx = np.sort(idx)
    return Split(split.images[idx], split.labels[idx])


def split_train_val(train: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """A seeded, stratified train/validation split (each class in the same proportion)."""
    if not 1 <= val_size < len(train):
        raise PipelineError(
            f"prepare.val_size is {val_size} but only {len(train)} training images are "
            "available; lower prepare.val_size or raise prepare.train_limit"
        )
    fit_idx, val_idx = train_test_split(
        np.arange(len(train)), test_size=val_size, stratify=train.labels, random_state=seed
    )
    fit_idx, val_idx = np.sort(fit_idx), np.sort(val_idx)
    return (
        Split(train.images[fit_idx], train.labels[fit_idx]),
        Split(train.images[val_idx], train.labels[val_idx]),
    )


def save_split(path: Path, split: Split) -> None:
    """Write one split as an uncompressed ``.npz`` (fast to load, DVC dedups it)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=split.images, labels=split.labels)


def load_split(path: str | Path) -> Split:
    """Read a split written by :func:`save_split` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} is missing; run `dvc repro prepare` first")
    with np.load(path, allow_pickle=False) as data:
        return Split(data["images"], data["labels"])


def exploration(split: Split, classes: tuple[str, ...]) -> dict[str, Any]:
    """What the reports looked at first: shape, dtype, range and images per class."""
    counts = np.bincount(split.labels, minlength=len(classes))
    return {
        "count": len(split),
        "shape": list(split.images.shape),
        "dtype": str(split.images.dtype),
        "min": int(split.images.min()) if len(split) else 0,
        "max": int(split.images.max()) if len(split) else 0,
        "per_class": {name: int(n) for name, n in zip(classes, counts, strict=True)},
    }

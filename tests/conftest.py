"""Shared fixtures: small synthetic datasets in the real file formats, with their checksums."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, python_stdout  # noqa: F401  (the tests import them from here)

from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST, DatasetSpec, IdxFile
from fmnist.data.prepared import Split, save_split


def synthetic_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images with balanced labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


@pytest.fixture
def tiny_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": synthetic_split(200, 1), "test": synthetic_split(50, 2)}


def spec_for(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> DatasetSpec:
    """Fashion-MNIST's spec with checksums replaced by those of ``data``."""
    idx = {}
    csv = {}
    for split, (images, labels) in data.items():
        (img_file, lab_file) = FASHION_MNIST.idx[split]
        idx[split] = (
            IdxFile(img_file.name, formats.sha256_bytes(formats.encode_idx(images))),
            IdxFile(lab_file.name, formats.sha256_bytes(formats.encode_idx(labels))),
        )
        csv[split] = (FASHION_MNIST.csv[split][0], formats.records_fingerprint(images, labels))
    return replace(FASHION_MNIST, idx=idx, csv=csv, debian_folder="/nonexistent")


@pytest.fixture
def tiny_spec(tiny_data: dict) -> DatasetSpec:
    return spec_for(tiny_data)


def write_idx_folder(folder: Path, data: dict, gz: bool = True) -> Path:
    """The four IDX files of ``data`` under their official names."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in data.items():
        img_file, lab_file = FASHION_MNIST.idx[split]
        for f, array in ((img_file, images), (lab_file, labels)):
            name = f.name if gz else f.name.removesuffix(".gz")
            formats.write_idx(folder / name, array)
    return folder


def write_csv_folder(folder: Path, data: dict) -> Path:
    """The two Kaggle CSVs of ``data``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in data.items():
        formats.write_csv(folder / FASHION_MNIST.csv[split][0], images, labels)
    return folder


@pytest.fixture
def in_tmp(tmp_path: Path):
    """Run the test inside ``tmp_path`` (stages write relative paths)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def headless_chromium(profile: Path):
    """Debian's Chromium under selenium, headless and with no background network (the
    machine has none), with a fresh profile in ``profile``; the caller quits it."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1100,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def save_small_model(path: Path) -> None:
    """An untrained, seeded fastcnn of width 8 as a project checkpoint at ``path``."""
    import torch

    from fmnist.models import build_model
    from fmnist.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(
        path,
        model_name="fastcnn",
        arch={"width": 8},
        state_dict=build_model("fastcnn", {"width": 8}).state_dict(),
        classes=FASHION_MNIST.classes,
        in_shape=(1, 28, 28),
    )


def png_with_rows(width: int, height: int, rows: int) -> bytes:
    """A grayscale PNG whose header says ``width`` x ``height`` but whose compressed data
    holds only its first ``rows`` rows: a truncated file, or a forged huge one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes([200]) * width for _ in range(rows)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose models/ holds an exported small model (stage export, real)."""
    run = tmp_path_factory.mktemp("served")
    save_small_model(run / "models/model.pt")
    images, labels = synthetic_split(40, 7)
    save_split(run / "data/prepared/test.npz", Split(images, labels))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "stages.export"], cwd=run, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return run

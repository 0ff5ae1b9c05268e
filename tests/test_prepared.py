"""The prepare stage's library: stratified seeded splits and the uint8 file contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_split, write_csv_folder, write_idx_folder

from fmnist.core.errors import PipelineError
from fmnist.data.prepared import (
    Split,
    load_split,
    read_raw,
    save_split,
    split_train_val,
    stratified_subset,
)


def _split(n: int = 1000) -> Split:
    images, labels = synthetic_split(n, 0)
    return Split(images, labels.astype(np.int64))


def test_split_is_stratified_and_disjoint() -> None:
    data = _split()
    fit, val = split_train_val(data, 200, seed=1)
    assert len(fit) == 800 and len(val) == 200
    assert np.bincount(val.labels).tolist() == [20] * 10
    assert np.bincount(fit.labels).tolist() == [80] * 10
    rows = {x.tobytes() for x in fit.images}
    assert not any(x.tobytes() in rows for x in val.images)


def test_split_is_seeded() -> None:
    data = _split()
    a, b, c = (split_train_val(data, 100, seed)[1] for seed in (7, 7, 8))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_too_large_val_size_is_a_clear_error() -> None:
    with pytest.raises(PipelineError, match=r"lower prepare\.val_size"):
        split_train_val(_split(100), 100, seed=0)


def test_subset_is_stratified() -> None:
    subset = stratified_subset(_split(), 300, seed=0)
    assert np.bincount(subset.labels).tolist() == [30] * 10
    assert stratified_subset(_split(), 0, seed=0).images.shape[0] == 1000


def test_split_file_round_trip_keeps_uint8(tmp_path: Path) -> None:
    data = _split(50)
    save_split(tmp_path / "s.npz", data)
    back = load_split(tmp_path / "s.npz")
    assert back.images.dtype == np.uint8 and back.labels.dtype == np.int64
    np.testing.assert_array_equal(back.images, data.images)


def test_missing_split_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="dvc repro prepare"):
        load_split(tmp_path / "nope.npz")


@pytest.mark.parametrize("writer", [write_idx_folder, write_csv_folder])
def test_read_raw_reads_both_forms(tmp_path: Path, tiny_data: dict, tiny_spec, writer) -> None:
    writer(tmp_path, tiny_data)
    splits, form = read_raw(tiny_spec, tmp_path)
    assert form in ("idx", "csv")
    np.testing.assert_array_equal(splits["train"].images, tiny_data["train"][0])
    np.testing.assert_array_equal(splits["test"].labels, tiny_data["test"][1])


def test_records_in_another_order_are_split_as_the_idx_files(tmp_path: Path) -> None:
    """A Kaggle CSV (or any copy) holding the official records in another order is put
    back in the IDX files' order, so it gives the same split and the same metrics."""
    from fmnist.data import formats
    from fmnist.data.datasets import FASHION_MNIST
    from fmnist.data.order import FOLDER, in_published_order, write

    debian = Path(FASHION_MNIST.debian_folder)
    images = formats.read_idx(debian / "t10k-images-idx3-ubyte.gz")
    labels = formats.read_idx(debian / "t10k-labels-idx1-ubyte.gz")
    shuffled = np.random.default_rng(0).permutation(len(labels))
    back = in_published_order(images[shuffled], labels[shuffled])
    assert np.array_equal(back[0], images) and np.array_equal(back[1], labels)
    # other data (a test's synthetic set) keeps its own order
    few = images[:50][::-1], labels[:50][::-1]
    assert in_published_order(*few)[1].tobytes() == few[1].tobytes()
    shipped = {p.name: p.read_bytes() for p in FOLDER.glob("*.npy")}
    import fmnist.data.order as order

    order.FOLDER = tmp_path  # rewrite them elsewhere: the same bytes
    try:
        written = {p.name: p.read_bytes() for p in write(FASHION_MNIST, debian)}
    finally:
        order.FOLDER = FOLDER
    assert written == shipped

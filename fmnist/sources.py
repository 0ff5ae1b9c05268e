"""Where raw files come from: the publisher's URL or a local folder (a mirror, Debian's
``dataset-fashion-mnist``, or a Kaggle CSV download), verified before anything is kept.

Every file is checked against the checksums in :mod:`fmnist.datasets` in a temporary
folder; only when all pass does the folder replace the output, so a mismatch or an
interrupted download leaves nothing behind.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fmnist import formats
from fmnist.atomic import atomic_dir
from fmnist.datasets import DatasetSpec
from fmnist.errors import ChecksumError, PipelineError

SOURCES = ("auto", "folder", "url")


@dataclass(frozen=True)
class Fetched:
    """What the download stage got: the form ('idx' or 'csv'), origin and file checksums."""

    form: str
    origin: str
    checksums: dict[str, str]


def find_in_folder(spec: DatasetSpec, folder: Path) -> tuple[str, list[Path]] | None:
    """Return ('idx', files) or ('csv', files) for the complete form found in ``folder``.

    IDX files may be gzipped or not (``train-images-idx3-ubyte`` without ``.gz``).
    """
    idx = []
    for name in spec.idx_names():
        candidates = [folder / name, folder / name.removesuffix(".gz")]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            break
        idx.append(found)
    else:
        return "idx", idx
    csv = [folder / name for name, _ in spec.csv.values()]
    if all(p.is_file() for p in csv):
        return "csv", csv
    return None


def verify_idx(spec: DatasetSpec, path: Path) -> str:
    """Check one IDX file's decompressed content against the spec; return its SHA-256."""
    expected = {f.name.removesuffix(".gz"): f.sha256 for pair in spec.idx.values() for f in pair}
    key = path.name.removesuffix(".gz")
    actual = formats.sha256_bytes(formats.read_idx_bytes(path))
    if actual != expected[key]:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed content is {actual}, expected {expected[key]}; "
            "the file is corrupt or not the official one: fetch it again"
        )
    return actual


def verify_csv(spec: DatasetSpec, path: Path) -> str:
    """Check a Kaggle CSV's records against the spec; return their fingerprint."""
    expected = {name: fp for name, fp in spec.csv.values()}[path.name]
    images, labels = formats.read_csv(path, side=spec.shape[1])
    actual = formats.records_fingerprint(images, labels)
    if actual != expected:
        raise ChecksumError(
            f"{path}: SHA-256 fingerprint of its records is {actual}, expected {expected}; "
            "the CSV is incomplete or not the official data: download it again"
        )
    return actual


def fetch(
    spec: DatasetSpec, out: Path, source: str = "auto", folder: str = "", url: str = ""
) -> Fetched:
    """Fetch and verify the raw files of ``spec`` into ``out`` (replacing it atomically)."""
    local = Path(folder or spec.debian_folder)
    if source not in SOURCES:
        raise PipelineError(f"data.source is {source!r}; use one of {', '.join(SOURCES)}")
    if source == "auto":
        source = "folder" if local.is_dir() and find_in_folder(spec, local) else "url"
    with atomic_dir(out) as tmp:
        if source == "folder":
            return _copy_from_folder(spec, local, tmp)
        return _download(spec, url or spec.url, tmp)


def _copy_from_folder(spec: DatasetSpec, folder: Path, tmp: Path) -> Fetched:
    found = find_in_folder(spec, folder)
    if found is None:
        wanted = ", ".join(spec.idx_names())
        csvs = ", ".join(name for name, _ in spec.csv.values())
        raise PipelineError(
            f"{folder}: found neither the IDX files ({wanted}) nor the Kaggle CSVs ({csvs}); "
            "set data.folder to a folder holding one of them, or data.source: url"
        )
    form, paths = found
    checksums = {}
    for path in paths:
        _log(f"verifying {path}")
        checksums[path.name] = verify_idx(spec, path) if form == "idx" else verify_csv(spec, path)
        shutil.copyfile(path, tmp / path.name)
    return Fetched(form, str(folder), checksums)


def _download(spec: DatasetSpec, base_url: str, tmp: Path) -> Fetched:
    checksums = {}
    for name in spec.idx_names():
        url = base_url.rstrip("/") + "/" + name
        _log(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp / name, "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        except (urllib.error.URLError, OSError) as exc:
            raise PipelineError(
                f"cannot download {url} ({exc}); check the connection, or set data.folder to a "
                "local copy (Debian/Ubuntu: apt-get install dataset-fashion-mnist)"
            ) from None
        checksums[name] = verify_idx(spec, tmp / name)
    return Fetched("idx", base_url, checksums)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

"""Where raw files come from: the publisher's URL or a local folder (a mirror, Debian's
``dataset-fashion-mnist``, a Kaggle CSV download, an extracted CIFAR-10 archive),
verified before anything is kept.

Every file is checked against the checksums in :mod:`fmnist.data.datasets` in a temporary
folder; only when all pass does the folder replace the output, so a mismatch or an
interrupted download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fmnist.core.atomic import atomic_dir
from fmnist.core.errors import ChecksumError, PipelineError
from fmnist.data import cifar, formats
from fmnist.data.datasets import DatasetSpec

SOURCES = ("auto", "folder", "url")
FORMS = ("idx", "csv", "cifar-archive", "cifar-batches")


@dataclass(frozen=True)
class Fetched:
    """What the download stage got: the form, origin and the verified file checksums."""

    form: str
    origin: str
    checksums: dict[str, str]


def find_in_folder(spec: DatasetSpec, folder: Path) -> tuple[str, list[Path]] | None:
    """The first complete form of ``spec``'s files in ``folder``: (form, files), or None.

    IDX files may be gzipped or not; CIFAR-10 may be the tarball or its extracted batches
    (in ``cifar-10-batches-py/`` or directly in the folder).
    """
    if spec.idx:
        idx = [_either(folder / n, folder / n.removesuffix(".gz")) for n in spec.idx_names()]
        if all(idx):
            return "idx", idx  # type: ignore[return-value]
    if spec.csv:
        csv = [folder / name for name, _ in spec.csv.values()]
        if all(p.is_file() for p in csv):
            return "csv", csv
    if spec.archive:
        if (folder / spec.archive.name).is_file():
            return "cifar-archive", [folder / spec.archive.name]
        for base in (folder / spec.archive.folder, folder):
            batches = [base / name for name in spec.archive.batches]
            if all(p.is_file() for p in batches):
                return "cifar-batches", batches
    return None


def _either(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def verify_idx(spec: DatasetSpec, path: Path) -> str:
    """Check one IDX file; return the checksum that matched.

    The SHA-256 of the decompressed content is checked where the spec knows it (any
    mirror, recompressed or not); otherwise the MD5 of the publisher's ``.gz`` bytes.
    """
    files = {
        f.name.removesuffix(".gz"): (f, split) for split, pair in spec.idx.items() for f in pair
    }
    expected, split = files[path.name.removesuffix(".gz")]
    # the header is checked against the file's size and the split's known image count
    content = formats.read_idx_bytes(path, max_items=spec.sizes[split])
    content_sha = formats.sha256_bytes(content)
    if expected.sha256 and content_sha == expected.sha256:
        return content_sha
    other = _dataset_holding(content_sha)
    if other is not None and other != spec.name:
        raise ChecksumError(
            f"{path} is a valid {other} file, not {spec.name}'s: set data.dataset: {other}, "
            f"or point data.folder at {spec.name}'s files"
        )
    if expected.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed content is {content_sha}, expected "
            f"{expected.sha256}; the file is corrupt or not the official one: fetch it again"
        )
    if path.suffix != ".gz":
        raise ChecksumError(
            f"{path}: only the publisher's .gz checksum is known for {spec.name}; "
            "use the original .gz files"
        )
    actual = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    if actual != expected.gz_md5:
        raise ChecksumError(
            f"{path}: MD5 is {actual}, expected {expected.gz_md5} (the publisher's .gz); "
            "the file is corrupt or not the official one: fetch it again"
        )
    return actual


def _dataset_holding(content_sha256: str) -> str | None:
    """The dataset whose IDX file has this decompressed content, if one is known."""
    from fmnist.data.datasets import DATASETS

    for name, other in DATASETS.items():
        for pair in other.idx.values():
            if any(f.sha256 == content_sha256 for f in pair):
                return name
    return None


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


def verify_cifar_batch(spec: DatasetSpec, name: str, data: bytes, where: str) -> str:
    """Check one CIFAR batch file's MD5; return it."""
    assert spec.archive is not None
    actual = cifar.md5(data)
    if actual != spec.archive.batches[name]:
        raise ChecksumError(
            f"{where}: MD5 of {name} is {actual}, expected {spec.archive.batches[name]}; "
            "the archive is corrupt or not the official one: fetch it again"
        )
    return actual


def verify_cifar_archive(spec: DatasetSpec, path: Path) -> dict[str, str]:
    """Check the tarball safely, member by member (a repacked mirror passes too)."""
    assert spec.archive is not None
    members = cifar.safe_members(path)
    missing = [name for name in spec.archive.batches if name not in members]
    if missing:
        raise ChecksumError(f"{path}: archive lacks {', '.join(missing)}; fetch it again")
    return {n: verify_cifar_batch(spec, n, members[n], str(path)) for n in spec.archive.batches}


def fetch(
    spec: DatasetSpec, out: Path, source: str = "auto", folder: str = "", url: str = ""
) -> Fetched:
    """Fetch and verify the raw files of ``spec`` into ``out`` (replacing it atomically)."""
    local = Path(folder or spec.debian_folder) if (folder or spec.debian_folder) else None
    if source not in SOURCES:
        raise PipelineError(f"data.source is {source!r}; use one of {', '.join(SOURCES)}")
    if source == "auto" and folder:
        source = "folder"  # a folder the user named is used, or refused: never skipped
    if source == "auto":
        found = local is not None and local.is_dir() and find_in_folder(spec, local)
        source = "folder" if found else "url"
    with atomic_dir(out) as tmp:
        if source == "folder":
            if local is None:
                raise PipelineError(f"data.folder is empty and {spec.name} has no default folder")
            return _copy_from_folder(spec, local, tmp)
        return _download(spec, url or spec.url, tmp)


def _copy_from_folder(spec: DatasetSpec, folder: Path, tmp: Path) -> Fetched:
    if not folder.is_dir():
        raise PipelineError(
            f"data.folder is {str(folder)!r}, which is not a folder; fix the path, or set "
            'data.folder: "" to use the default source'
        )
    found = find_in_folder(spec, folder)
    if found is None:
        raise PipelineError(
            f"{folder}: no complete copy of {spec.name} ({_wanted(spec)}); set data.folder "
            "to a folder holding one, or data.source: url"
        )
    form, paths = found
    checksums: dict[str, str] = {}
    for path in paths:
        _log(f"verifying {path}")
        if form == "idx":
            checksums[path.name] = verify_idx(spec, path)
        elif form == "csv":
            checksums[path.name] = verify_csv(spec, path)
        elif form == "cifar-archive":
            checksums |= verify_cifar_archive(spec, path)
        else:
            checksums[path.name] = verify_cifar_batch(spec, path.name, path.read_bytes(), str(path))
        shutil.copyfile(path, tmp / path.name)
    return Fetched(form, str(folder), checksums)


def _wanted(spec: DatasetSpec) -> str:
    forms = []
    if spec.idx:
        forms.append("the IDX files " + ", ".join(spec.idx_names()))
    if spec.csv:
        forms.append("the Kaggle CSVs " + ", ".join(name for name, _ in spec.csv.values()))
    if spec.archive:
        forms.append(f"{spec.archive.name} or its extracted {spec.archive.folder}/")
    return "; or ".join(forms)


def _download(spec: DatasetSpec, base_url: str, tmp: Path) -> Fetched:
    names = [spec.archive.name] if spec.archive else spec.idx_names()
    for name in names:
        url = base_url.rstrip("/") + "/" + name
        _log(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp / name, "wb") as f:
                shutil.copyfileobj(response, f, length=1 << 20)
        except (urllib.error.URLError, OSError) as exc:
            hint = " (Debian/Ubuntu: apt-get install dataset-fashion-mnist)" * (
                spec.name == "fashion-mnist"
            )
            raise PipelineError(
                f"cannot download {url} ({exc}); check the connection, or set data.folder "
                f"to a local copy{hint}"
            ) from None
    if spec.archive:
        return Fetched("cifar-archive", base_url, verify_cifar_archive(spec, tmp / names[0]))
    return Fetched("idx", base_url, {n: verify_idx(spec, tmp / n) for n in names})


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

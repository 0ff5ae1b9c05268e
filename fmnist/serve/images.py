"""Turn any picture into the dataset's convention: 28x28 grayscale, garment light on dark.

Steps, as Fashion-MNIST's own pipeline did for product photos: decode (any format Pillow
reads, EXIF rotation applied, transparency flattened onto white), isolate the garment
from its background (:mod:`fmnist.serve.isolate`), convert to grayscale, invert when the
background is light, black outside the garment, trim to its bounding box, centre it on a
black square, resized to 28x28 (the aspect ratio is kept). An image that is already
28x28 on a dark background is used as it is; one whose garment cannot be isolated is
converted by brightness alone, and the reason goes with it.

Memory is bounded by the pixels, not by the longest side: the header is checked before
any pixel is decoded (at most :data:`MAX_PIXELS`, at most :data:`MAX_ASPECT` to 1), JPEGs
decode already reduced (``draft``), and every image is shrunk to at most
:data:`WORK_SIDE` pixels a side right after decoding, before any conversion or copy.
A decode costs at most the pixels times their bands (200 MB at the cap, RGBA); the
server runs a bounded number of them at once.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist.core.errors import PipelineError
from fmnist.serve.isolate import isolate

MAX_PIXELS = 50_000_000  # refuse before decoding: a 20000x20000 image would need 400 MB+
MAX_ASPECT = 50  # longest side over shortest: no photo of a garment is a 1x49,000,000 strip
WORK_SIDE = 512  # the decoded image is shrunk to this at once: ample for 28x28 (or 32x32)
SIDE = 28
INK = 25  # grey level above which a pixel belongs to the garment (after inversion)
IMAGE_SUFFIXES = frozenset(
    ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN
)


class ImageError(PipelineError):
    """A file that cannot be used as an image; the message says why, on one line."""


def load_image(path: str | Path, mode: str = "L") -> Image.Image:
    """Decode ``path`` into a grayscale (``L``) or ``RGB`` image, refusing empty, huge and
    broken files."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():  # a folder inside a list of files, a FIFO, a device
        raise ImageError(f"{path}: not a regular file; name an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    return decode_image(path, str(path), mode)


def decode_image(source: Path | BinaryIO, name: str, mode: str = "L") -> Image.Image:
    """:func:`load_image` for a file or an in-memory upload; ``name`` says which in errors.
    The size is checked from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_size(img, name)
                height = img.height
                img.draft("RGB" if mode == "RGB" else "L", (WORK_SIDE, WORK_SIDE))  # JPEG
                img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
                img = ImageOps.exif_transpose(img)  # of the small copy: rotating costs a copy
                _warn_if_mostly_missing(img, name, height)
                return _flatten(_eight_bit(img), mode)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses these before our own check sees the size: say our limit, not its
        raise ImageError(
            f"{name}: image too large (over {MAX_PIXELS:,} pixels); "
            f"resize it below {MAX_PIXELS:,} pixels"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: truncated or corrupt image ({exc})") from None


def _check_size(img: Image.Image, name: str) -> None:
    """Refuse from the header what would cost too much to decode."""
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: image too large ({width}x{height}); resize it below {MAX_PIXELS:,} pixels"
        )
    if max(width, height) > MAX_ASPECT * max(1, min(width, height)):
        raise ImageError(
            f"{name}: {width}x{height} is not a picture of a garment (sides over "
            f"{MAX_ASPECT}:1); crop it to the garment"
        )


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey images scaled to 8 bits by their depth: Pillow's own
    conversion to L clips every value over 255, which turns them black and white."""
    if img.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(img, np.uint32) >> 8).astype(np.uint8))
    if img.mode in ("I", "F"):
        a = np.asarray(img, np.float64)
        top = 65535.0 if a.max() > 255 else 255.0  # a 16-bit PNG opens as I
        return Image.fromarray(np.clip(a / top * 255.0, 0, 255).round().astype(np.uint8))
    return img


def _warn_if_mostly_missing(img: Image.Image, path: Path | str, height: int) -> None:
    """Say so when most of a large image's rows, from the bottom up, are exactly zero.

    Pillow decodes a PNG whose compressed data stops early without complaint, filling the
    rest with zeros; the prediction is then of a sliver. It is still predicted (a real
    picture can end in black), but the user hears that the file may be truncated.
    ``img`` is the shrunk copy; ``height`` the file's own, in which the message counts."""
    if height < 64:
        return
    rows = np.asarray(img).reshape(img.height, -1)
    filled = np.flatnonzero(rows.any(axis=1))
    last = filled[-1] + 1 if filled.size else 0
    if img.height - last > img.height // 2:
        empty = round((img.height - last) / img.height * height)
        print(
            f"warning: {path}: its last {empty:,} of {height:,} rows are "
            "empty (all zero): the file may be truncated; predicting it as it is",
            file=sys.stderr,
        )


def _flatten(img: Image.Image, mode: str = "L") -> Image.Image:
    """``mode`` (L or RGB), any transparency composited onto white (a light background)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert(mode)


@dataclass(frozen=True)
class Converted:
    """A picture as the model's uint8 input, and why its garment could not be isolated
    ("" when it was, or when the picture is already in the dataset's convention)."""

    pixels: np.ndarray
    problem: str = ""


def to_model_input(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """The picture at ``path`` as the model's uint8 input: (H, W) grayscale in the
    dataset's convention, or (H, W, 3) colour resized as it is (CIFAR-10 photos)."""
    return convert_file(path, shape).pixels


def convert_file(path: str | Path, shape: tuple[int, int, int]) -> Converted:
    """:func:`to_model_input`, with what the conversion could not do."""
    return image_to_model_input(lambda mode: load_image(path, mode), shape)


def upload_to_model_input(data: bytes, name: str, shape: tuple[int, int, int]) -> Converted:
    """:func:`convert_file` for the bytes of an upload."""
    if not data:
        raise ImageError(f"{name}: empty file")
    return image_to_model_input(lambda mode: decode_image(io.BytesIO(data), name, mode), shape)


def image_to_model_input(
    decode: Callable[[str], Image.Image], shape: tuple[int, int, int]
) -> Converted:
    """The image ``decode(mode)`` gives, converted to the model's uint8 input."""
    channels, height, width = shape
    if channels == 1:
        return garment_convention(decode("RGB"))
    image = decode("RGB").resize((width, height), Image.Resampling.LANCZOS)
    return Converted(np.asarray(image, dtype=np.uint8))


def garment_convention(rgb: Image.Image) -> Converted:
    """A colour picture -> uint8 (28, 28): the garment isolated from its background
    (:mod:`fmnist.serve.isolate`), light on black, centred. A picture already in the
    dataset's convention is kept; one whose garment cannot be isolated gets the plain
    conversion (:func:`to_dataset_convention`) and the reason."""
    grey = np.asarray(rgb.convert("L"), dtype=np.uint8)
    light = _border(grey).mean() > 127
    if not light and grey.shape == (SIDE, SIDE):
        return Converted(grey.copy())  # already in the dataset's convention
    found = isolate(rgb)
    if found.mask is None:
        return Converted(to_dataset_convention(rgb.convert("L")), found.problem)
    small = np.asarray(found.picture.convert("L"), dtype=np.uint8)
    garment = np.where(found.mask, 255 - small if light else small, 0).astype(np.uint8)
    return Converted(_centred(_trim(garment, found.mask)))


def to_dataset_convention(img: Image.Image) -> np.ndarray:
    """A grayscale image -> uint8 (28, 28), garment light on dark, centred, by
    brightness alone: right for a garment on white or black, not on a floor or a bed."""
    a = np.asarray(img, dtype=np.uint8)
    if _border(a).mean() > 127:  # light background (a photo, a scan): make it dark
        a = 255 - a
    elif a.shape == (SIDE, SIDE):
        return a.copy()  # already in the dataset's convention
    return _centred(_trim(a, a > INK))


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _trim(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``a`` cut to the bounding box of ``keep`` (all of it when nothing is kept)."""
    rows, cols = np.nonzero(keep)
    if not rows.size:
        return a
    return a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _centred(a: np.ndarray) -> np.ndarray:
    """``a`` centred on a black square, then resized once to 28x28: measured closer to
    the original test images (and more often the same prediction) than resizing then
    padding to 28x28."""
    h, w = a.shape
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = a
    small = Image.fromarray(square).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.uint8)


def image_files(paths: list[str | Path]) -> list[Path]:
    """Files to predict: explicit files as given, folders expanded to their image files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                raise PipelineError(f"{path}: folder holds no image files")
            found += images
        else:
            found.append(path)
    return found

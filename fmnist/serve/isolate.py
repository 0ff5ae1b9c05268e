"""Find the garment in a photo: separate it from the background by colour, keep the main
object, and say so when there is no one object to keep.

Fashion-MNIST's images are garments cut out of white product shots: the garment, and
nothing else, on black. A phone photo has a floor, a bed or a hanger behind the garment;
thresholding brightness leaves it as a grey rectangle, which the model reads as a Bag.
Here the background is whatever colour the picture's border has (its median, in CIELAB,
where distances match what the eye sees); a pixel belongs to the garment when it is
further from that colour than Otsu's threshold on the distances, and no closer than the
border's own spread (a patterned floor). Small specks are opened away, holes filled, and
the largest connected object kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

WORK_SIDE = 128  # isolation runs on this size: ample for a 28x28 result, and fast
MIN_FRACTION = 0.03  # an object under 3 % of the picture: not a garment photo to judge
MAX_FRACTION = 0.92  # over 92 %: the garment (or the background) fills the picture


@dataclass(frozen=True)
class Isolation:
    """The garment's mask on the shrunk picture, or why none could be found."""

    mask: np.ndarray | None  # bool (H, W), True on the garment
    picture: Image.Image  # the picture the mask belongs to (RGB, at most WORK_SIDE)
    problem: str = ""  # why there is no mask, in words for the user


def isolate(rgb: Image.Image) -> Isolation:
    """The main object of ``rgb`` (any size; shrunk here) against its border's colour."""
    picture = rgb.convert("RGB")
    picture.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    lab = np.asarray(picture.convert("LAB"), np.float32)
    border = _border(lab)
    background = np.median(border, axis=0)
    distance = ndimage.uniform_filter(np.linalg.norm(lab - background, axis=2), size=(5, 5))
    spread = np.percentile(np.linalg.norm(border - background, axis=1), 90)
    mask = distance > max(_otsu(distance), spread)
    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))
    labels, count = ndimage.label(mask)
    if count == 0:
        return Isolation(None, picture, "nothing stands out from the background")
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    mask = labels == int(np.argmax(sizes)) + 1
    fraction = float(mask.mean())
    if fraction < MIN_FRACTION:
        return Isolation(None, picture, "the garment is too small in the picture")
    if fraction > MAX_FRACTION:
        return Isolation(None, picture, "the garment cannot be told from the background")
    return Isolation(mask, picture)


def _border(lab: np.ndarray) -> np.ndarray:
    """The pixels of a band around the picture's edge (a twentieth of its short side)."""
    band = max(2, min(lab.shape[:2]) // 20)
    edges = [lab[:band], lab[-band:], lab[:, :band], lab[:, -band:]]
    return np.concatenate([e.reshape(-1, lab.shape[2]) for e in edges])


def _otsu(values: np.ndarray, bins: int = 64) -> float:
    """The threshold that best splits ``values`` in two (Otsu's method)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(hist)
    above = below[-1] - below
    mass = np.cumsum(hist * centres)
    valid = (below > 0) & (above > 0)
    between = np.zeros_like(centres)
    between[valid] = (mass[-1] * below[valid] / below[-1] - mass[valid]) ** 2 / (
        below[valid] * above[valid]
    )
    return float(centres[np.argmax(between)])

"""Real photos: the garment isolated from grey, textured and white backgrounds in
portrait and landscape, an honest "unsure" through the CLI and the server, figures named
uniquely, high-depth images keeping their tones, and the photo benchmark."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import ROOT, save_small_model
from PIL import Image, ImageDraw

from bench.serve_load import start_server
from fmnist.serve.images import convert_file, garment_convention, upload_to_model_input
from fmnist.serve.isolate import isolate

SHIRT = [(30, 10), (70, 10), (95, 35), (80, 50), (72, 40), (72, 110), (28, 110), (28, 40),
         (20, 50), (5, 35)]  # fmt: skip


def scene(
    background: str, size: tuple[int, int], garment=(40, 60, 140)
) -> tuple[Image.Image, np.ndarray]:
    """A T-shirt-shaped garment on ``background``, and its true mask."""
    w, h = size
    rng = np.random.default_rng(0)
    if background == "grey":
        base = np.full((h, w, 3), 150, np.uint8)
    elif background == "white":
        base = np.full((h, w, 3), 250, np.uint8)
    else:  # wood-like stripes with noise: a floor
        stripes = (np.sin(np.arange(w) / 3.0) * 25 + 170).astype(np.int16)
        base = np.clip(stripes[None, :, None] + rng.integers(-12, 12, (h, w, 3)), 0, 255)
        base = (base * [1.0, 0.85, 0.6]).astype(np.uint8)
    picture = Image.fromarray(base)
    mask = Image.new("L", (w, h))
    scale = min(w, h) / 140
    offset = ((w - 100 * scale) / 2, (h - 120 * scale) / 2)
    outline = [(offset[0] + x * scale, offset[1] + y * scale) for x, y in SHIRT]
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    picture.paste(Image.new("RGB", (w, h), garment), mask=mask)
    return picture, np.asarray(mask) > 0


@pytest.mark.parametrize("background", ["grey", "textured", "white"])
@pytest.mark.parametrize("size", [(300, 450), (450, 300)], ids=["portrait", "landscape"])
def test_the_garment_is_isolated_on_any_background(background: str, size: tuple) -> None:
    picture, truth = scene(background, size)
    found = isolate(picture)
    assert found.problem == ""
    small = np.asarray(Image.fromarray(truth).resize(found.picture.size)) > 0
    iou = (found.mask & small).sum() / (found.mask | small).sum()
    assert iou > 0.85, iou
    converted = garment_convention(picture)
    x = converted.pixels
    assert converted.problem == "" and x.shape == (28, 28)
    assert x[0, 0] == x[0, -1] == x[-1, 0] == x[-1, -1] == 0  # black around it, no bars
    assert x.max() > 100  # a dark garment on a light background comes out light


def test_a_picture_with_no_one_object_says_why() -> None:
    flat = Image.new("RGB", (200, 300), (120, 110, 100))
    assert "nothing stands out" in isolate(flat).problem
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    assert isolate(noise).problem  # no main object in noise


def test_a_16_bit_image_keeps_its_tones(tmp_path: Path) -> None:
    yy, xx = np.mgrid[:160, :120]
    radius = np.hypot(yy - 80, xx - 60)
    deep = np.full((160, 120), 65535, np.uint16)  # white around a shaded round garment
    deep[radius < 50] = (8000 + radius[radius < 50] * 600).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    assert Image.open(path).mode.startswith("I")  # a real 16-bit file
    pixels = convert_file(path, (1, 28, 28)).pixels
    inside = pixels[pixels > 0]
    assert len(np.unique(inside)) > 20 and (inside < 250).mean() > 0.5  # shades, not {0, 255}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_small_model(path)
    return path


def test_the_cli_answers_unsure_with_the_reason_and_names_figures_uniquely(
    small_model: Path, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (200, 300), (120, 110, 100)).save(tmp_path / folder / "item.png")
    table, figures = tmp_path / "out.csv", tmp_path / "figures"
    figures.mkdir()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fmnist.serve.predict", str(tmp_path / "a")),
            *(str(tmp_path / "b"), "--model", str(small_model)),
            *("--csv", str(table), "--show", str(figures)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("unsure: the garment could not be isolated") == 2
    rows = list(csv.DictReader(table.open()))
    assert [r["status"] for r in rows] == ["unsure", "unsure"]
    assert "nothing stands out" in rows[0]["error"]
    assert sorted(p.name for p in figures.iterdir()) == ["a__item.png", "b__item.png"]


def test_the_server_answers_unsure_and_shows_the_input(exported: Path) -> None:
    flat = io.BytesIO()
    Image.new("RGB", (200, 300), (120, 110, 100)).save(flat, "PNG")
    proc, url = start_server(exported / "models")
    try:
        answer = requests.post(f"{url}/predict", files={"files": flat.getvalue()}, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    (prediction,) = answer.json()["predictions"]
    assert "could not be isolated" in prediction["unsure"]
    assert prediction["input"].startswith("data:image/png;base64,")
    assert len(prediction["top"]) == 3  # the guesses are still there to read


def test_fashion_mnist_images_are_used_as_they_are() -> None:
    image = np.zeros((28, 28), np.uint8)
    image[5:20, 8:18] = 200
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    converted = upload_to_model_input(buffer.getvalue(), "x.png", (1, 28, 28))
    assert converted.problem == "" and np.array_equal(converted.pixels, image)


def test_the_photo_benchmark_reports_each_folder(small_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    lines = ["path,folder,fashion_mnist_classes"]
    for name, right in (("t-shirt", "T-shirt/top"), ("hat", "")):
        (folder / name).mkdir(parents=True)
        for i, size in enumerate([(300, 450), (450, 300)]):
            scene("grey", size)[0].save(folder / name / f"{i}.png")
            lines.append(f"{name}/{i}.png,{name},{right}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "photos_result"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "photos", "--folder", str(folder)),
            *("--model", str(small_model), "--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    folders = {r["folder"]: r for r in result["rows"]}
    assert set(folders) == {"t-shirt", "all ten-class photos", "none of the ten"}
    assert folders["t-shirt"]["photos"] == 2 and folders["none of the ten"]["photos"] == 2
    assert [t["threshold"] for t in result["tables"][0]["rows"]] == [0.3, 0.35, 0.4, 0.45, 0.5]

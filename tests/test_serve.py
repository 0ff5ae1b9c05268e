"""The model server as a user meets it: the real server on a free localhost port, its
page driven in headless Chromium, and bad uploads that must not take it down."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from conftest import headless_chromium, png_with_rows, synthetic_split
from PIL import Image

from bench.serve_load import start_server
from fmnist.data.datasets import FASHION_MNIST
from fmnist.train.batches import to_device
from fmnist.train.checkpoint import load_checkpoint
from fmnist.train.inference import predict_logits

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(exported: Path):
    """The real server, one megabyte of upload allowed; yields its URL."""
    proc, url = start_server(exported / "models", "--max-upload-mb", "1")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _evaluation_class(exported: Path, image: np.ndarray) -> str:
    """The class the evaluate stage's code gives ``image``."""
    model, meta = load_checkpoint(exported / "models/model.pt")
    data = to_device(image[None], np.zeros(1, np.int64), torch.device("cpu"))
    return meta["classes"][int(predict_logits(model, data, 1).argmax())]


def test_the_page_shows_the_evaluations_class_for_an_uploaded_png(
    server: str, exported: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = synthetic_split(40, 7)[0][3]
    png = tmp_path / "garment.png"
    Image.fromarray(image).save(png)
    api = requests.post(f"{server}/predict", files={"files": png.read_bytes()}, timeout=30)
    unsure = api.json()["predictions"][0]["unsure"]
    driver = headless_chromium(tmp_path / "profile")
    try:
        driver.get(server + "/")
        driver.find_element(By.ID, "file").send_keys(str(png))
        shown = WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "predicted").text or d.find_element(By.ID, "error").text
        )
        bars = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#bars .bar span")]
        seen = driver.find_element(By.ID, "seen").get_attribute("src")
        why = driver.find_element(By.ID, "why").text
        outside = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith(location.origin) && !n.startsWith('blob:'))"
        )
    finally:
        driver.quit()
    evaluated = _evaluation_class(exported, image)
    assert bars[0] == evaluated  # the likeliest class first, sure or not
    assert shown == ("Unsure" if unsure else evaluated)
    assert (unsure in why) if unsure else why == ""
    assert seen.startswith("data:image/png;base64,")  # the 28x28 input the model saw
    assert len(bars) == len(FASHION_MNIST.classes) and outside == []


def test_bad_uploads_get_a_one_line_4xx_and_the_server_keeps_serving(
    server: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(synthetic_split(10, 1)[0][0]).save(good)
    cases = {
        "empty": (b"", 400, "empty file"),
        "text": (b"just some words\n", 400, "not an image"),
        "truncated": (good.read_bytes()[:60], 400, "truncated or corrupt"),
        "oversized": (os.urandom(1_100_000), 413, "over 1 MB"),
        "forged": (png_with_rows(30_000, 30_000, 1), 400, "too large"),
    }
    for name, (data, status, said) in cases.items():
        answer = requests.post(f"{server}/predict", files={"files": (name, data)}, timeout=30)
        assert answer.status_code == status, (name, answer.text)
        error = answer.json()["error"]
        assert said in error and "\n" not in error, (name, error)
    missing = requests.post(f"{server}/predict", timeout=30)
    assert missing.status_code == 422 and "files" in missing.json()["error"]
    assert requests.get(f"{server}/health", timeout=5).json()["status"] == "ok"
    both = [("files", ("a.png", good.read_bytes())), ("files", ("b.png", good.read_bytes()))]
    batch = requests.post(f"{server}/predict?top_k=2", files=both, timeout=30).json()
    assert [len(p["top"]) for p in batch["predictions"]] == [2, 2]

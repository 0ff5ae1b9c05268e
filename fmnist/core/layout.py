"""Where each stage reads and writes, relative to the repository root (as in dvc.yaml).

Relative paths matter: queued and ``--temp`` experiments run in a copy of the repo.
"""

from pathlib import Path

PARAMS = Path("params.yaml")
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
MODELS = Path("models")
MODEL = MODELS / "model.pt"
SUMMARY = MODELS / "summary.txt"
METRICS = Path("metrics")
PLOTS = METRICS / "plots"
LIVE = METRICS / "live"
DATA_JSON = METRICS / "data.json"
TRAIN_JSON = METRICS / "train.json"
METRICS_JSON = METRICS / "metrics.json"
PREDICTIONS_CSV = METRICS / "predictions.csv"


def split_path(split: str) -> Path:
    """The prepared file of ``split`` (train, val or test)."""
    return PREPARED / f"{split}.npz"


CHECKED = Path("params.checked")  # stage check's mark that params.yaml passed (dvc.yaml)

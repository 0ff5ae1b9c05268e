"""Are this workspace's results the committed ones? One line: identical, or different and
why (params, kernel mode, CPU, library versions, threads, code), with the size of the
difference against the model's seed-to-seed spread.

    python -m fmnist.review.verify [--against REV]     (exit 0: identical, 1: different)

Why: a reviewer who reruns ``dvc repro`` on another machine sees changed files and must
tell a real change from another CPU; metrics/train.json records what decides that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fmnist.core import layout
from fmnist.core.errors import PipelineError, run_stage
from fmnist.review.runs import describe_recipe
from fmnist.train.params import selected_recipe

LIVE = layout.METRICS / "live/plots/metrics"
COMPARED = (
    layout.METRICS_JSON,
    layout.METRICS / "predictions.csv",
    *(LIVE / f"{split}/{name}.tsv" for split in ("train", "val") for name in ("accuracy", "loss")),
)
LEADERBOARD = Path("results/leaderboard.json")
CODE = ("fmnist", "stages")
# optimizers whose CPU update calls torch.sqrt, which MKL's vector maths computes with code
# chosen by CPU vendor, pinned or not: the fused Adam, AdamW, SGD and Adagrad do not
VENDOR_SQRT = ("rmsprop", "adadelta")


def committed(path: Path, rev: str) -> bytes | None:
    """``path`` as ``rev`` holds it, or None where it holds none."""
    show = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True)
    return show.stdout if show.returncode == 0 else None


def _json_at(path: Path, rev: str | None) -> dict[str, Any]:
    """A JSON file here (``rev`` None) or in ``rev``; {} where there is none."""
    raw = path.read_bytes() if rev is None and path.is_file() else None
    if rev is not None:
        raw = committed(path, rev)
    return json.loads(raw) if raw else {}


def weights_digest(path: Path = layout.MODEL) -> str:
    """sha256 of the checkpoint's weights, name by name: the bits training produced,
    whatever container torch.save wrapped them in."""
    import torch  # late: the verdict itself needs no torch

    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def result_digests() -> dict[str, str]:
    """sha256 of the weights and of every compared result: what the CI guard commits."""
    files = {p.as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in COMPARED}
    return {"weights": weights_digest()} | files


def changed_files(rev: str) -> list[Path]:
    """The compared results that differ from ``rev`` byte for byte."""
    return [p for p in COMPARED if (p.read_bytes() if p.is_file() else None) != committed(p, rev)]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= _flat(value, f"{prefix}.{key}" if prefix else key)
    return out


def run_params(rev: str | None) -> dict[str, Any]:
    """params.yaml here (``rev`` None) or in ``rev``, flat, with the selected model's
    recipe under ``model.`` whichever shape the file has (:func:`selected_recipe`)."""
    raw = layout.PARAMS.read_bytes() if rev is None and layout.PARAMS.is_file() else None
    if rev is not None:
        raw = committed(layout.PARAMS, rev)
    params = yaml.safe_load(raw) if raw else {}
    name, recipe = selected_recipe(params)
    shared = {k: v for k, v in params.items() if k not in ("model", "models")}
    return _flat(shared) | {"model.name": name} | _flat(recipe or {}, "model")


def param_changes(rev: str) -> list[str]:
    """``key value (REV: other)`` for each param that differs from ``rev``."""
    here, there = run_params(None), run_params(rev)
    return [
        f"{key} {here.get(key, 'unset')} ({rev}: {there.get(key, 'unset')})"
        for key in sorted(here.keys() | there.keys())
        if here.get(key) != there.get(key)
    ]


def run_changes(here: dict[str, Any], there: dict[str, Any], rev: str) -> list[str]:
    """What metrics/train.json says differs between two runs: kernels, CPU, libraries."""
    if not there.get("kernels"):
        return [f"{rev}'s run recorded no kernel mode (it predates train.reproducible)"]
    kh, kt = here.get("kernels", {}), there["kernels"]
    reasons = []
    if kh.get("mode") != kt.get("mode"):
        reasons.append(f"kernels {kh.get('mode')} here, {kt.get('mode')} in {rev}")
    elif not (kh.get("pinned") and kt.get("pinned")):
        isa_h, isa_t = (r.get("machine", {}).get("isa") for r in (here, there))
        if isa_h != isa_t:
            reasons.append(f"CPU ISA {_isa(isa_h)} here, {_isa(isa_t)} in {rev} (unpinned kernels)")
    for key in ("torch", "onednn", "mkl"):
        if kh.get(key) != kt.get(key):
            reasons.append(f"{key} {kh.get(key)} here, {kt.get(key)} in {rev}")
    for key in ("threads", "precision", "processes", "device"):
        if here.get(key) != there.get(key):
            reasons.append(f"{key} {here.get(key)} here, {there.get(key)} in {rev}")
    return reasons


def _isa(flags: list[str] | None) -> str:
    return "+".join(flags or []) or "none"


def code_changed(rev: str) -> bool:
    """Whether the pipeline's code differs from ``rev`` (committed or not)."""
    return subprocess.run(["git", "diff", "--quiet", rev, "--", *CODE]).returncode != 0


def seed_spread(model: str, recipe: dict[str, Any], board: Path = LEADERBOARD) -> float | None:
    """The seed-to-seed standard deviation (points) of ``model`` on the leaderboard: its
    current recipe's where recorded, else its most-seeded recipe's; None without one."""
    if not board.is_file():
        return None
    runs = [s for s in json.loads(board.read_text()).get("seeds", []) if s["model"] == model]
    same = [s for s in runs if s.get("recipe") == describe_recipe(model, recipe)]
    best = max(same or runs, key=lambda s: len(s["seeds"]), default=None)
    return best["std"] if best and best.get("std") else None


def size_of_change(rev: str) -> str:
    """Test accuracy here and in ``rev``, the gap in points and in seed-to-seed SDs."""
    here = _json_at(layout.METRICS_JSON, None).get("test", {}).get("accuracy")
    there = _json_at(layout.METRICS_JSON, rev).get("test", {}).get("accuracy")
    if here is None or there is None:
        return f"no test accuracy in {rev} to compare"
    gap = 100 * (here - there)
    text = f"test accuracy {100 * here:.2f} % here, {100 * there:.2f} % in {rev} ({gap:+.2f} points"
    model, recipe = selected_recipe(yaml.safe_load(layout.PARAMS.read_text()) or {})
    spread = seed_spread(str(model), recipe or {})
    if spread:
        text += f", {abs(gap) / spread:.1f}x {model}'s seed-to-seed sd {spread:.2f}"
    return text + ")"


def verdict(rev: str = "HEAD") -> tuple[bool, str]:
    """(identical, the one line that says so or says what differs and why)."""
    if not layout.METRICS_JSON.is_file():
        raise PipelineError(f"no {layout.METRICS_JSON} in this workspace: run `dvc repro` first")
    if committed(layout.METRICS_JSON, rev) is None:
        raise PipelineError(f"{rev} holds no {layout.METRICS_JSON}: name a commit that does")
    changed = changed_files(rev)
    if not changed:
        return True, (
            f"identical: metrics.json, predictions.csv and the {len(COMPARED) - 2} training "
            f"curves match {rev} byte for byte"
        )
    here, there = (_json_at(layout.TRAIN_JSON, r).get("train", {}) for r in (None, rev))
    reasons = param_changes(rev) + run_changes(here, there, rev)
    if code_changed(rev):
        reasons.append(f"code under {'/ and '.join(CODE)}/ differs from {rev}")
    why = "; ".join(reasons) or _unexplained(here, there)
    names = ", ".join(p.name for p in changed[:3]) + (", ..." if len(changed) > 3 else "")
    return False, f"different ({names}): {size_of_change(rev)}; why: {why}"


def _unexplained(here: dict[str, Any], there: dict[str, Any]) -> str:
    """Why, when nothing recorded differs: a broken promise if both runs were portable."""
    cpus = {r.get("machine", {}).get("cpu") for r in (here, there)}
    vml = here.get("optimizer") in VENDOR_SQRT and len(cpus) > 1
    if vml:  # documented, not a broken promise (docs/reproducibility.md)
        return (
            f"{here['optimizer']} takes its square roots from MKL's vector maths, which picks "
            f"its code by CPU vendor whatever the pin ({' and '.join(sorted(map(str, cpus)))})"
        )
    if all(r.get("kernels", {}).get("pinned") for r in (here, there)):
        return (
            f"nothing recorded differs and both ran the portable AVX2 baseline "
            f"({' and '.join(sorted(map(str, cpus)))}): that breaks the portable promise, "
            "please report it with both metrics/train.json files"
        )
    return "nothing recorded differs (params, kernels, CPU ISA, libraries, code)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the commit to compare with")
    args = parser.parse_args()
    same, line = verdict(args.against)
    print(line)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)

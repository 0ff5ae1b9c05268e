"""What averaging trained models would buy: test accuracy of every ensemble of them.

    python -m bench.ensemble fastcnn-tv-s1 fastcnn-tv-s2 fastcnn-tv-s3 fastcnn-tv-s4 main \\
        [--out results/ensemble]

Each name is an experiment (`dvc exp show`) or a git revision; its ``models/model.pt``
comes from the DVC cache, so nothing is retrained. Every model predicts the test set with
flip TTA (the default recipe's evaluation); an ensemble averages its members'
probabilities. For each ensemble size the table gives the mean, min and max accuracy over
all choices of members: whether K models' worth of training time is better spent on an
ensemble or on one bigger model.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import subprocess
from pathlib import Path

import dvc.api
import torch

from bench.common import write_results
from fmnist.core import layout
from fmnist.core.errors import PipelineError, run_stage
from fmnist.data.prepared import load_split
from fmnist.train.batches import DeviceSplit, to_device
from fmnist.train.checkpoint import read_checkpoint
from fmnist.train.inference import predict_logits


def experiment_refs() -> dict[str, str]:
    """Each experiment's name -> its git ref (``refs/exps/.../<name>``), read once."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {ref.rsplit("/", 1)[-1]: ref for ref in refs}


def checkpoint_probabilities(name: str, rev: str, test: DeviceSplit) -> torch.Tensor:
    """Test-set probabilities (flip TTA) of the model that revision ``rev`` trained."""
    try:
        blob = dvc.api.read(str(layout.MODEL), rev=rev, mode="rb")
    except Exception as exc:
        raise PipelineError(
            f"no model for {name!r} in the DVC cache ({exc}); name an experiment that "
            "`dvc exp show` lists, or a git revision whose run was committed"
        ) from None
    model, _ = read_checkpoint(io.BytesIO(blob), f"{name}'s {layout.MODEL}")
    return predict_logits(model, test, 1000, tta=True).softmax(-1)


def ensemble_table(probs: dict[str, torch.Tensor], labels: torch.Tensor) -> list[dict]:
    """For each size K: accuracy of every K-member average, summarised as mean/min/max."""
    rows = []
    for k in range(1, len(probs) + 1):
        accuracies = [
            (sum(probs[n] for n in members).argmax(1) == labels).float().mean().item()
            for members in itertools.combinations(probs, k)
        ]
        rows.append(
            {
                "members": k,
                "choices": len(accuracies),
                "mean": statistics.fmean(accuracies),
                "min": min(accuracies),
                "max": max(accuracies),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="experiments or git revisions")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    split = load_split(args.data / "test.npz")
    test = to_device(split.images, split.labels, torch.device("cpu"))
    refs = experiment_refs()
    probs = {
        name: checkpoint_probabilities(name, refs.get(name, name), test) for name in args.names
    }
    lines = [
        f"Test accuracy (flip TTA) of the averaged probabilities of {', '.join(args.names)}; "
        "`python -m bench.ensemble`.",
        "",
        "| members | choices | mean % | min % | max % |",
        "|---:|---:|---:|---:|---:|",
    ]
    rows = ensemble_table(probs, test.labels)
    lines += [
        f"| {r['members']} | {r['choices']} | {r['mean']:.2%} | {r['min']:.2%} | {r['max']:.2%} |"
        for r in rows
    ]
    print("\n".join(lines))
    write_results(
        args.out,
        {"models": args.names, "rows": rows},
        title="Ensembles of trained models",
        about=lines[0],
        columns=[
            ("members", "members"),
            ("choices", "choices"),
            ("mean", "mean", "{:.2%}"),
            ("min", "min", "{:.2%}"),
            ("max", "max", "{:.2%}"),
        ],
    )


if __name__ == "__main__":
    run_stage(main)

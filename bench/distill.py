"""Knowledge distillation into a fast model, measured: do a stronger teacher's soft labels
buy the student accuracy at the same training time?

    python -m bench.distill "fastcnn-hour epochs=12" "fastcnn arch.width=24" \\
        --mix 0:1 0.7:4 0.9:2 --seeds 42 --teacher-cache models/teacher.pt \\
        --out results/distill

The teacher (a ``bench.budget`` variant) trains once, with the first seed, and labels
every training image and its mirror image. Each student then trains as the train stage
trains it, except that its loss is ``(1 - alpha) * cross-entropy (with the recipe's
label smoothing) + alpha * T^2 * KL(teacher || student)`` at temperature ``T``, one run
per ``alpha:T`` of ``--mix`` and seed; ``alpha`` 0 is the student alone, bit for bit
``bench.budget``'s run. The student's recipe may augment by flips only: the flip is
drawn here, as the engine draws it, to pick the teacher's view of the same image. The
teacher's training time is reported beside the students', not inside theirs.

The train stage's code stays as it is: the distillation epoch stands in for the engine's
``train_epoch`` only for the duration of a student's run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fmnist.core.errors import PipelineError, run_stage

LOGIT_BATCH = 500


def parse_mix(text: str) -> tuple[float, float]:
    """``"alpha:T"`` into (alpha in [0, 1], temperature > 0), or a one-line error."""
    alpha, sep, temp = text.partition(":")
    try:
        pair = (float(alpha), float(temp)) if sep else None
    except ValueError:
        pair = None
    if pair is None or not (0 <= pair[0] <= 1 and pair[1] > 0):
        raise PipelineError(
            f"--mix {text!r}: give alpha:T with 0 <= alpha <= 1 and T > 0, e.g. 0.7:4"
        )
    return pair


def teacher_logits(params: Any, seed: int, data: Path) -> dict[str, Any]:
    """Train the teacher; its test accuracy, training seconds and logits (N, 2, classes)
    on the training images as the student sees them: plain, then mirrored."""
    import torch

    from bench.budget import test_accuracy, train
    from fmnist.train.batches import scale

    model, splits, seconds, precision = train(params, seed, data)
    model.eval()
    views = []
    with torch.no_grad():
        for start in range(0, len(splits[0]), LOGIT_BATCH):
            x = scale(splits[0].images[start : start + LOGIT_BATCH])
            views.append(torch.stack([model(x), model(x.flip(-1))], 1).float().cpu())
    return {
        "test_accuracy": test_accuracy(params, model, splits[2], precision),
        "seconds": seconds,
        "logits": torch.cat(views),
    }


def cached_teacher(variant: str, params: Any, seed: int, data: Path, cache: Path | None) -> Any:
    """The teacher of ``variant`` and ``seed``: from ``cache`` when it holds that one
    (loaded with ``weights_only``), else trained, and saved to ``cache`` when given."""
    import torch

    from fmnist.core.atomic import atomic_path

    if cache is not None and cache.is_file():
        try:
            saved = torch.load(cache, weights_only=True)
        except Exception as exc:  # truncated, not torch's format, or holding code
            raise PipelineError(
                f"{cache} is not a teacher cache this bench wrote ({type(exc).__name__}): "
                "delete it, or name another --teacher-cache"
            ) from None
        if not isinstance(saved, dict) or "logits" not in saved:
            raise PipelineError(f"{cache} holds no teacher logits: delete it, or name another")
        if (saved.get("variant"), saved.get("seed")) != (variant, seed):
            raise PipelineError(
                f"{cache} holds the teacher {saved.get('variant')!r} seed {saved.get('seed')}, "
                f"not {variant!r} seed {seed}: delete it or name another --teacher-cache"
            )
        return saved
    teacher = {"variant": variant, "seed": seed, **teacher_logits(params, seed, data)}
    if cache is not None:
        with atomic_path(cache) as tmp:
            torch.save(teacher, tmp)
    return teacher


def distillation_epoch(teacher: Any, alpha: float, temp: float) -> Callable[..., Any]:
    """A stand-in for :func:`fmnist.train.engine.train_epoch` (same arguments, same loop)
    whose loss mixes the recipe's cross-entropy with the teacher's soft labels
    (``teacher``: (N, 2, classes) logits of each training image, plain and mirrored)."""
    import torch
    import torch.nn.functional as F

    from fmnist.train.batches import batch_indices, scale
    from fmnist.train.engine import optimizer_step
    from fmnist.train.inference import autocast

    def soft_loss(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits / temp, 1)
        return (
            F.kl_div(log_p, F.log_softmax(soft / temp, 1), reduction="batchmean", log_target=True)
            * temp**2
        )

    def epoch(
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Any,
        *,
        batch_size: int,
        aug: Any,
        generator: torch.Generator,
        order: torch.Tensor,
        scheduler: Any = None,
        progress: Callable[[], None] = lambda: None,
        label_smoothing: float = 0.0,
        ema: Any = None,
        precision: torch.dtype | None = None,
    ) -> tuple[float, float]:
        if len(data) != len(teacher):
            raise PipelineError(
                f"the teacher labelled {len(teacher)} training images, the student learns "
                f"from {len(data)}: give both recipes the same train_on"
            )
        model.train()
        loss_sum = torch.zeros((), device=data.labels.device)
        correct = torch.zeros((), device=data.labels.device, dtype=torch.long)
        for idx in batch_indices(order, batch_size):
            idx = idx.to(data.labels.device)
            x, y = scale(data.images[idx]), data.labels[idx]
            flip = torch.zeros(len(idx), dtype=torch.bool)
            if aug.hflip:  # drawn as augment._random_flip draws it: alpha 0 is the engine's run
                draw = torch.rand(len(idx), generator=generator, device=generator.device)
                flip = draw.cpu() < 0.5
                x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
            soft = torch.where(flip[:, None], teacher[idx.cpu(), 1], teacher[idx.cpu(), 0])
            with autocast(x.device, precision):
                logits = model(x)
                ce = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
                loss = (1 - alpha) * ce + alpha * soft_loss(logits.float(), soft.to(x.device))
            optimizer_step(loss, model, optimizer, scheduler, ema)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            progress()
        return loss_sum.item() / len(data), correct.item() / len(data)

    return epoch


@contextmanager
def engine_epoch(epoch: Callable[..., Any]) -> Iterator[None]:
    """Run the engine's ``fit`` with ``epoch`` in place of its ``train_epoch``."""
    from fmnist.train import engine

    original = engine.train_epoch
    engine.train_epoch = epoch
    try:
        yield
    finally:
        engine.train_epoch = original


def check_augmentation(params: Any) -> None:
    """The student may augment by flips alone: each image is paired with the teacher's
    plain or mirrored view."""
    from fmnist.train.augment import Augment

    aug = params.recipe.augment
    if aug not in (Augment(), Augment(hflip=True)):
        raise PipelineError(
            f"the student's augmentation {aug} is more than flips: distillation here pairs "
            "each image with the teacher's plain or mirrored view; set it to {hflip: true}"
        )


def distil(params: Any, teacher: Any, mix: tuple[float, float], seed: int, data: Path) -> Any:
    """One student run: test accuracy and training seconds."""
    from bench.budget import test_accuracy, train

    with engine_epoch(distillation_epoch(teacher["logits"], *mix)):
        model, splits, seconds, precision = train(params, seed, data)
    accuracy = test_accuracy(params, model, splits[2], precision)
    return {"seed": seed, "test_accuracy": accuracy, "seconds": seconds}


def main() -> None:
    from bench.budget import parse_variant, pinned_params, require_prepared, variant_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", help='"MODEL [key=value ...]" (bench.budget syntax)')
    parser.add_argument("student", help='"MODEL [key=value ...]", flips its only augmentation')
    parser.add_argument("--mix", nargs="+", default=["0:1", "0.7:4"], help="alpha:T pairs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--teacher-cache", type=Path, help="reuse or keep the teacher's logits")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) and .json here")
    args = parser.parse_args()
    raw, mode = pinned_params()
    mixes = [parse_mix(m) for m in args.mix]
    teacher_params, student_params = (
        variant_params(raw, *parse_variant(v)) for v in (args.teacher, args.student)
    )
    require_prepared(args.data)
    check_augmentation(student_params)
    from fmnist.train.device import set_threads

    threads = set_threads(raw.get("train", {}).get("threads", 0), reproducible=mode)
    teacher = cached_teacher(
        args.teacher, teacher_params, args.seeds[0], args.data, args.teacher_cache
    )
    print(f"teacher {args.teacher}: {teacher['test_accuracy']} % test", file=sys.stderr)
    rows = [teacher_row(args.teacher, teacher_params, teacher)]
    for alpha, temp in mixes:
        runs = []
        for seed in args.seeds:
            runs.append(distil(student_params, teacher, (alpha, temp), seed, args.data))
            print(f"alpha {alpha} T {temp} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
        rows.append(student_row(args.student, student_params, alpha, temp, runs))
    write(args, rows, threads, mode)


def teacher_row(variant: str, params: Any, teacher: Any) -> dict[str, Any]:
    """The teacher's line of the table."""
    return {
        "role": "teacher",
        "variant": variant,
        "epochs": params.recipe.epochs,
        "alpha": None,
        "temperature": None,
        "seeds": 1,
        "mean": teacher["test_accuracy"],
        "sd": None,
        "seconds": teacher["seconds"],
        "runs": [{"seed": teacher["seed"], "test_accuracy": teacher["test_accuracy"]}],
    }


def student_row(
    variant: str, params: Any, alpha: float, temp: float, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """A student's line: accuracy over seeds and mean training seconds."""
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "role": "student alone" if alpha == 0 else "student",
        "variant": variant,
        "epochs": params.recipe.epochs,
        "alpha": alpha,
        "temperature": None if alpha == 0 else temp,
        "seeds": len(runs),
        "mean": round(statistics.mean(accuracies), 2),
        "sd": round(statistics.stdev(accuracies), 2) if len(runs) > 1 else None,
        "seconds": round(statistics.mean(r["seconds"] for r in runs), 1),
        "runs": runs,
    }


def write(args: argparse.Namespace, rows: list[dict[str, Any]], threads: int, mode: str) -> None:
    """Print the table; with ``--out`` write it as results JSON and markdown."""
    from bench.common import write_results

    about = (
        "Test accuracy (each recipe's test-time augmentation; mean over seeds "
        f"{' '.join(map(str, args.seeds))}) of a student trained on its labels mixed with "
        f"a teacher's soft labels (weight alpha, temperature T), and training seconds "
        f"({threads} threads, {mode} kernels), by `python -m bench.distill`."
    )
    print(about)
    for row in rows:
        print(f"| {row['role']} | {row['variant']} | {row['alpha']} | {row['mean']} |")
    write_results(
        args.out,
        {"seeds": args.seeds, "threads": threads, "kernels": mode, "rows": rows},
        title="Distillation into a fast model",
        about=about,
        columns=[
            ("role", "role"),
            ("variant", "variant"),
            ("epochs", "epochs"),
            ("alpha", "alpha"),
            ("temperature", "T"),
            ("seeds", "seeds"),
            ("mean", "test % (mean)"),
            ("sd", "sd"),
            ("seconds", "training s"),
        ],
    )


if __name__ == "__main__":
    run_stage(main)

"""Queue zoo models as DVC experiments, each with its own recipe, and run the queue.

    python -m fmnist.review.sweep                      # every zoo model, full recipes
    python -m fmnist.review.sweep cnn1 cnn3 --jobs 1   # a chosen list
    python -m fmnist.review.sweep --set model.epochs=2 cnn1        # extra overrides
    python -m fmnist.review.sweep --no-wait ...        # queue and start, return at once

Experiments are named ``zoo-<model>`` (replacing an earlier one of that name). Watch
them with ``dvc queue status`` and ``dvc queue logs zoo-<model>``; build the table with
``python -m fmnist.review.leaderboard``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from fmnist.core.errors import PipelineError, run_stage
from fmnist.models import list_models
from fmnist.review.reference import REPORTED, ZOO


def command(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """A git or dvc command, its output captured; a failure (with ``check``) is one
    PipelineError line with its output."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().replace("\n", " ")
        raise PipelineError(f"{' '.join(args[:3])} failed: {detail}")
    return done


def dvc(*args: str) -> str:
    """What a dvc command printed (see :func:`command`)."""
    return command("dvc", *args).stdout


def report_split(name: str) -> list[str]:
    """The override that gives ``name`` its report's train/validation split, if the report
    held out another number of images than params.yaml does (report A: 10 %, 6,000)."""
    reported = REPORTED.get(name)
    if reported is None or reported.val_size is None:
        return []
    return [f"prepare.val_size={reported.val_size}"]


def queue(models: list[str], overrides: list[str]) -> None:
    """Queue one experiment per model: ``-S model=<name>`` switches the recipe too, and
    the report's own split where it differs; ``overrides`` come last and win."""
    unknown = [m for m in models if m not in list_models()]
    if unknown:
        raise PipelineError(f"unknown model(s) {unknown}; valid names: {', '.join(list_models())}")
    for name in models:
        settings = [f"model={name}", *report_split(name), *overrides]
        sets = [arg for kv in settings for arg in ("-S", kv)]
        dvc("exp", "run", "--queue", "--force", "-n", f"zoo-{name}", *sets)
        print(f"queued zoo-{name}", flush=True)


ACTIVE = re.compile(r"\s(Running|Queued)\s*$")


def wait_for_queue(poll: float = 15.0) -> None:
    """Block until no queued or running experiment is left, printing its status."""
    last = ""
    while True:
        status = dvc("queue", "status")
        # the status is the row's last column: no space after it
        active = [line for line in status.splitlines() if ACTIVE.search(line)]
        summary = f"{len(active)} experiment(s) queued or running"
        if summary != last:
            print(summary, flush=True)
            last = summary
        if not active:
            print(status)
            return
        time.sleep(poll)


def share_cores(jobs: int) -> int:
    """Give each of ``jobs`` queue workers its share of the cores (``FMNIST_THREADS``,
    inherited by the workers and read by the train stage) unless the user set it: N
    workers that each take every core fight over them instead of adding up."""
    if "FMNIST_THREADS" not in os.environ:
        os.environ["FMNIST_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // jobs))
    return int(os.environ["FMNIST_THREADS"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Queue zoo models as DVC experiments.")
    parser.add_argument("models", nargs="*", default=list(ZOO), help="default: the whole zoo")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="parallel workers")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-wait", action="store_true", help="return once the queue starts")
    parser.add_argument("--poll", type=float, default=15.0, help="seconds between status checks")
    args = parser.parse_args()
    queue(args.models, args.set)
    share_cores(args.jobs)
    dvc("queue", "start", "--jobs", str(args.jobs))
    if not args.no_wait:
        wait_for_queue(args.poll)


if __name__ == "__main__":
    sys.exit(run_stage(main))

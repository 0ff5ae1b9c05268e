"""A sweep across machines, on one machine: a bare Git repository as ``origin``, a folder
as the DVC remote, one clone per worker running ``fmnist.review.sweep_unit`` as its own
process. The end-to-end test and this benchmark run the same set-up.

    python -m bench sweep --out results/sweep

prints (and writes) the wall time of three workers at once against one worker running
the same three in turn, the time of a re-run that reuses the pushed experiment, and
``dvc exp show -A`` in a collector clone that pulled them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results
from bench.project_copy import GUARD_PROFILE, ROOT, project_repo, sh

MODELS = ("cnn1", "cnn3", "logreg")  # small, and each a different kind of model
# the small profile, smaller still: three workers share two cores in about a minute
SMALL = ("--profile", "small", "--set", "prepare.train_limit=2000", "--set", "model.epochs=1")


def origin_with_baseline(root: Path) -> Path:
    """``root/origin.git`` holding a committed, reproduced baseline whose outputs are in
    the DVC remote ``root/dvc-remote``: what a sweep's workers start from."""
    origin = root / "origin.git"
    root.mkdir(parents=True, exist_ok=True)
    sh(root, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    seed = project_repo(root / "seed", GUARD_PROFILE, remote=root / "dvc-remote")
    for step in (
        ["dvc", "repro"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "the baseline's results"],
        ["dvc", "push"],
        ["git", "remote", "add", "origin", str(origin)],
        ["git", "push", "-q", "origin", "main"],
    ):
        sh(seed, *step)
    return origin


def clone(origin: Path, path: Path) -> Path:
    """A worker's (or the collector's) clone, with a git identity for experiment commits."""
    sh(path.parent, "git", "clone", "-q", str(origin), path.name)
    sh(path, "git", "config", "user.email", "worker@example.invalid")
    sh(path, "git", "config", "user.name", "worker")
    return path


def unit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fmnist.review.sweep_unit", *args]


Job = tuple[Path, list[str], dict[str, str]]  # where, the command, extra environment


def unit_job(path: Path, *args: str) -> Job:
    return path, unit_command(*args), {}


def run_units(jobs: dict[str, Job], parallel: bool = True) -> dict:
    """Each job's command in its clone, all at once or in turn:
    ``{"outputs", "codes", "seconds"}``. Each process gets one thread, as N workers
    sharing a machine's cores would."""
    env = {**os.environ, "FMNIST_THREADS": "1", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.perf_counter()
    outputs, procs = {}, {}
    for name, (path, argv, extra) in jobs.items():
        procs[name] = subprocess.Popen(
            argv,
            cwd=path,
            env=env | extra,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if not parallel:
            outputs[name] = procs[name].communicate(timeout=1800)[0]
    for name, proc in procs.items():
        if parallel:
            outputs[name] = proc.communicate(timeout=1800)[0]
    codes = {name: proc.returncode for name, proc in procs.items()}
    return {"outputs": outputs, "codes": codes, "seconds": time.perf_counter() - started}


def timed(cwd: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = sh(cwd, *args)
    return time.perf_counter() - started, out


def measure(root: Path) -> dict:
    """The figures: three workers at once, then the same three by one worker in turn
    (another origin, so nothing is reused), a re-run, and the collector's exp show."""
    figures = {}
    for mode, parallel in (("parallel", True), ("in_turn", False)):
        origin = origin_with_baseline(root / mode)
        if parallel:
            jobs = {m: unit_job(clone(origin, root / mode / m), m, *SMALL) for m in MODELS}
        else:
            one = clone(origin, root / mode / "worker")
            jobs = {m: unit_job(one, m, *SMALL) for m in MODELS}
        result = run_units(jobs, parallel)
        if any(result["codes"].values()):
            raise RuntimeError(f"a unit failed: {result['outputs']}")
        figures[f"{mode}_seconds"] = round(result["seconds"], 1)
    worker = root / "parallel" / MODELS[0]
    figures["reused_seconds"] = round(timed(worker, *unit_command(MODELS[0], *SMALL))[0], 1)
    collector = clone(root / "parallel" / "origin.git", root / "collector")
    figures["collect_seconds"] = round(timed(collector, *unit_command("--collect"))[0], 1)
    show = ("dvc", "exp", "show", "--no-pager", "--json", "-A")
    figures["exp_show_seconds"] = round(timed(collector, *show)[0], 1)
    return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__)
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        figures = measure(Path(tmp))
    row = {"experiments": len(MODELS), **figures}
    print(row)
    write_results(
        args.out,
        {"rows": [row]},
        title="A sweep across workers",
        about=(
            f"{len(MODELS)} small experiments ({', '.join(MODELS)}; "
            f"`{' '.join(SMALL)}`), each pushed to a bare Git origin and a folder DVC remote: "
            "three worker clones at once (one thread each) against one clone running them "
            "in turn; a re-run of one unit (reused, nothing trained); a collector clone "
            "fetching them (`--collect`) and `dvc exp show -A` there."
        ),
        columns=[
            ("experiments", "experiments"),
            ("parallel_seconds", "3 workers at once, s"),
            ("in_turn_seconds", "1 worker in turn, s"),
            ("reused_seconds", "re-run (reused), s"),
            ("collect_seconds", "collect, s"),
            ("exp_show_seconds", "exp show -A, s"),
        ],
    )

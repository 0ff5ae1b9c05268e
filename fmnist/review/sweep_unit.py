"""One experiment of a sweep, as any scheduler runs it on any machine: a CI matrix job, a
SLURM array task, a Kubernetes Indexed Job pod, or a shell loop.

    python -m fmnist.review.sweep_unit cnn1                        # the zoo model cnn1
    python -m fmnist.review.sweep_unit cnn1 --set model.lr=0.01 --profile small
    python -m fmnist.review.sweep_unit --index "$SLURM_ARRAY_TASK_ID"   # grid entry N
    python -m fmnist.review.sweep_unit --list                      # the grid, as JSON
    python -m fmnist.review.sweep_unit --collect                   # pull everything back

Run from a clone checked out at the commit to sweep, with a Git remote (``origin``) and
a default DVC remote. The experiment gets a name made from its settings
(``cnn1-3fa2b1c0``): the same settings give the same name on every machine, other
settings another name. The unit

1. reuses an experiment of that name that is already at the Git remote (or in this
   clone): it trains nothing and says so;
2. else runs ``dvc exp run -n NAME -S ...`` (stages whose inputs did not change come
   from the DVC cache; an interrupted train stage resumes from its checkpoint);
3. pushes the experiment: its Git refs to the Git remote, its outputs to the DVC remote
   (``dvc exp push``, without the run-cache, which some remotes refuse);
4. on failure, pushes a failure record (``refs/sweep-failures/<commit>/<name>``, one
   ``failure.json`` with the reason) so that the leaderboard shows it, and exits 1.

Experiments are Git refs, so the Git remote is the one record of a sweep: ``--collect``
fetches every experiment and failure record (refs only), and
``python -m fmnist.review.leaderboard`` reads them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fmnist.core.config import write_params
from fmnist.core.errors import PipelineError, run_stage
from fmnist.models import list_models
from fmnist.review.sweep import command, report_split
from fmnist.train.params import model_recipes

# a trial run: minutes on a CPU instead of hours (the pull-request workflow's profile)
PROFILES: dict[str, tuple[str, ...]] = {
    "full": (),
    "small": (
        "prepare.train_limit=6000",
        "prepare.val_size=1000",
        "prepare.test_limit=2000",
        "model.epochs=1",
    ),
}
DATA_STAGES = ("download", "prepare")
RUNNING = Path(".dvc/tmp/sweep-unit")  # the experiment this clone is running, until it ends
CHECKPOINT = Path("models/resume.pt")
FAILURES = "refs/sweep-failures"
FAILURE_FILE = "failure.json"
# how a stage's run ends when DVC took its outputs from the cache instead of running it
REUSED = re.compile(r"Stage '([\w-]+)' (?:is cached - skipping run|didn't change, skipping)")


@dataclass(frozen=True)
class Unit:
    """One grid entry: a zoo model and the settings on top of its recipe."""

    model: str
    settings: tuple[str, ...]  # `-S` overrides after model=<model>, in the order given

    @property
    def overrides(self) -> list[str]:
        """Every `-S` value: the model, its report's split where it had another, then ours;
        a key given twice keeps its last value (the profile's split over the report's)."""
        chosen: dict[str, str] = {}
        for value in [f"model={self.model}", *report_split(self.model), *self.settings]:
            chosen[value.split("=", 1)[0]] = value
        return list(chosen.values())

    @property
    def name(self) -> str:
        """``<model>-<8 hex>``: a digest of the sorted overrides, the same on every machine."""
        digest = hashlib.sha256("\n".join(sorted(self.overrides)).encode()).hexdigest()
        return f"{self.model}-{digest[:8]}"


def make_unit(model: str, settings: list[str], profile: str) -> Unit:
    if model not in list_models():
        raise PipelineError(f"unknown model {model!r}; valid names: {', '.join(list_models())}")
    for value in settings:
        if "=" not in value:
            raise PipelineError(f"--set {value!r} is not KEY=VALUE; e.g. --set model.lr=0.01")
    return Unit(model, (*PROFILES[profile], *settings))


def read_grid(path: Path | None) -> list[str]:
    """The grid's entries: one per line, ``MODEL [KEY=VALUE ...]`` (``#`` comments);
    without a file, every model of the zoo (conf/model/) with its own recipe."""
    if path is None:
        return sorted(model_recipes())
    if not path.is_file():
        raise PipelineError(f"grid file {path} does not exist; give one line per experiment")
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def grid_entry(grid: list[str], index: int) -> tuple[str, list[str]]:
    if not 0 <= index < len(grid):
        raise PipelineError(f"--index {index} is outside the grid's 0..{len(grid) - 1}")
    model, *settings = grid[index].split()
    return model, settings


def experiments_at(git_remote: str | None) -> set[str]:
    """Experiment names of HEAD's commit, at ``git_remote`` or (None) in this clone."""
    remote = [git_remote] if git_remote else []
    out = command("dvc", "exp", "list", "--name-only", *remote).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def stream(args: list[str]) -> tuple[int, list[str]]:
    """Run ``args`` with its output shown as it comes (progress on long runs) and kept."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = []
    for line in proc.stdout or []:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    return proc.wait(), lines


def failure_reason(lines: list[str]) -> str:
    """The stage's own one-line ``error:`` message if it printed one, else DVC's."""
    for prefix in ("error: ", "ERROR: "):
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[0][len(prefix) :]
    return lines[-1] if lines else "no output"


def head() -> str:
    return command("git", "rev-parse", "HEAD").stdout.strip()


def failure_ref(name: str) -> str:
    return f"{FAILURES}/{head()}/{name}"


def record_failure(unit: Unit, reason: str, git_remote: str) -> None:
    """A commit holding ``failure.json`` under ``refs/sweep-failures/<commit>/<name>``,
    pushed: the collector sees the failure and its reason through Git, as it sees the
    experiments. (An experiment commit of the failed workspace would carry the base
    commit's metrics and a dvc.lock that claims them.)"""
    record = {
        "experiment": unit.name,
        "model": unit.model,
        "overrides": unit.overrides,
        "reason": reason,
        "host": platform.node(),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        input=json.dumps(record, indent=2) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = subprocess.run(
        ["git", "mktree"],
        input=f"100644 blob {blob}\t{FAILURE_FILE}\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = head()
    commit = command("git", "commit-tree", tree, "-p", base, "-m", f"failed: {unit.name}")
    ref = failure_ref(unit.name)
    command("git", "update-ref", ref, commit.stdout.strip())
    command("git", "push", "-q", "--force", git_remote, ref)


def clear_failure(name: str, git_remote: str) -> None:
    """Remove an earlier failure record of ``name``: its rerun succeeded."""
    ref = failure_ref(name)
    command("git", "update-ref", "-d", ref, check=False)
    if command("git", "ls-remote", git_remote, ref).stdout.strip():
        command("git", "push", "-q", git_remote, f":{ref}")


def push(name: str, git_remote: str) -> None:
    # the run-cache stays local: some remotes refuse it, and every worker pulling every
    # other worker's run history would download every model trained
    command("dvc", "exp", "push", "--force", "--no-run-cache", git_remote, name)


def run_experiment(unit: Unit) -> tuple[int, list[str]]:
    """``dvc exp run``; or, where this clone's run of the same experiment was killed,
    ``dvc repro`` on the same params then ``dvc exp save``: ``dvc exp run`` first checks
    every output out of the cache (forced), which would replace the killed run's
    checkpoint with the base commit's, and train again from epoch one."""
    interrupted = RUNNING.is_file() and RUNNING.read_text() == unit.name and CHECKPOINT.is_file()
    RUNNING.parent.mkdir(parents=True, exist_ok=True)
    RUNNING.write_text(unit.name)
    if not interrupted:
        sets = [arg for value in unit.overrides for arg in ("-S", value)]
        return stream(["dvc", "exp", "run", "-n", unit.name, *sets])
    print(f"{unit.name} was interrupted in this clone: resuming it with dvc repro", flush=True)
    write_params(Path("params.yaml"), unit.overrides, Path("conf"))
    code, lines = stream(["dvc", "repro"])
    if code == 0:
        command("dvc", "exp", "save", "--force", "-n", unit.name)
    return code, lines


def run_unit(unit: Unit, git_remote: str) -> int:
    """Run or reuse one experiment and push it; 0 when it is at the remote, 1 if it failed."""
    started = time.perf_counter()
    name = unit.name
    print(f"experiment {name}: -S {' -S '.join(unit.overrides)}", flush=True)
    if name in experiments_at(git_remote):
        command("dvc", "exp", "pull", "--no-cache", git_remote, name)
        print(f"reused: {name} is already at {git_remote}; nothing trained", flush=True)
        return 0
    if name in experiments_at(None):
        push(name, git_remote)
        clear_failure(name, git_remote)
        print(f"reused: {name} was already run in this clone; pushed it, nothing trained")
        return 0
    # the base commit's data, so that the data stages are checked out instead of run
    # again (a remote without them: they run); not models/, where a killed run of this
    # unit left the checkpoint it resumes from
    command("dvc", "pull", "--allow-missing", *DATA_STAGES, check=False)
    code, lines = run_experiment(unit)
    RUNNING.unlink(missing_ok=True)
    if code != 0:
        reason = failure_reason(lines)
        record_failure(unit, reason, git_remote)
        raise PipelineError(f"experiment {name} failed: {reason} (recorded at {git_remote})")
    push(name, git_remote)
    clear_failure(name, git_remote)
    cached = sorted(set(REUSED.findall("\n".join(lines))))
    took = time.perf_counter() - started
    reused = f"; from the cache: {', '.join(cached)}" if cached else ""
    print(f"pushed {name} to {git_remote} in {took:.0f} s{reused}", flush=True)
    return 0


def recorded_failures(exp_show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failure records in this clone, except those of experiments that succeeded on
    the same commit since (a rerun): each ``failure.json`` with its ``commit``."""
    succeeded = {
        (entry.get("rev", ""), exp.get("name"))
        for entry in exp_show
        for experiment in entry.get("experiments") or []
        for exp in experiment.get("revs") or []
    }
    refs = command("git", "for-each-ref", "--format=%(refname)", FAILURES).stdout.split()
    records = []
    for ref in refs:
        commit, name = ref.removeprefix(FAILURES + "/").split("/", 1)
        if (commit, name) in succeeded:
            continue
        record = json.loads(command("git", "show", f"{ref}:{FAILURE_FILE}").stdout)
        records.append(record | {"commit": commit[:7]})
    return sorted(records, key=lambda r: (r["experiment"], r["commit"]))


def collect(git_remote: str) -> None:
    """Fetch every experiment (refs only, no models) and failure record of the remote."""
    command("dvc", "exp", "pull", "--all-commits", "--no-cache", git_remote)
    command("git", "fetch", "-q", "--prune", git_remote, f"+{FAILURES}/*:{FAILURES}/*")
    count = len(command("dvc", "exp", "list", "--all-commits", "--name-only").stdout.split())
    failed = command("git", "for-each-ref", "--format=%(refname)", FAILURES).stdout.split()
    print(f"collected {count} experiment(s) and {len(failed)} failure record(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one sweep experiment and push it.")
    parser.add_argument("model", nargs="?", help="a zoo model (or use --index)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--grid", type=Path, help="one experiment per line: MODEL [KEY=VALUE...]")
    parser.add_argument("--index", type=int, help="run the grid's entry N (0-based)")
    parser.add_argument("--list", action="store_true", help="print the grid as a JSON list")
    parser.add_argument("--collect", action="store_true", help="fetch every experiment back")
    parser.add_argument("--git-remote", default="origin")
    args = parser.parse_args()
    grid = read_grid(args.grid)
    if args.list:
        print(json.dumps(grid))
        return
    if args.collect:
        collect(args.git_remote)
        return
    if args.index is not None:
        model, settings = grid_entry(grid, args.index)
    elif args.model:
        model, settings = args.model, []
    else:
        raise PipelineError("name a model, or give --index N with the grid (--list shows it)")
    sys.exit(run_unit(make_unit(model, settings + args.set, args.profile), args.git_remote))


if __name__ == "__main__":
    run_stage(main)

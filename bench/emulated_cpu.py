"""Portable kernels on another CPU, without that CPU: a small run trained and evaluated
natively and under QEMU's emulation of another x86 CPU, compared bit for bit; for the
default model (the CI guard's run) also with tests/reference/portable.json.

    python -m bench emulated-cpu [--model fastcnn] [--cpu Haswell-v4] [--work DIR]

Needs ``qemu-x86_64`` (Debian: ``apt-get install qemu-user``). QEMU answers the CPU's
identity questions (vendor, instruction sets, cache sizes) as the named model would, so
MKL, oneDNN and ATen choose their kernels as on that CPU; it computes every IEEE
operation exactly, as hardware does. What it cannot show is an approximate instruction
(``rsqrtps``, ``rcpps``), whose last bits differ between vendors' hardware: a path that
uses one differs here too, so a match means the run avoided them. About 4 minutes for
the default model; other models get 1,100 images and one epoch of their own recipe.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.project_copy import GUARD_PROFILE, ROOT, copy_project
from fmnist.core.errors import PipelineError

REFERENCE = ROOT / "tests/reference/portable.json"


def profile(model: str) -> dict[tuple[str, ...], object]:
    """The CI guard's profile for the default model; the same data and one epoch of
    their own recipe for the others."""
    if model == "fastcnn":
        return GUARD_PROFILE
    data = {k: v for k, v in GUARD_PROFILE.items() if k[0] == "prepare"}
    return data | {("model", "epochs"): 1}


def prepared_copy(work: Path, model: str) -> Path:
    """A git + DVC copy of the project on ``model``'s profile, its data prepared natively."""
    repo = work / model
    if (repo / "data/prepared").is_dir():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    copy_project(repo, profile(model), model)
    dvc = str(Path(sys.executable).parent / "dvc")
    who = ["-c", "user.email=e@e.invalid", "-c", "user.name=e"]
    for command in (
        ["git", "init", "-q"],
        ["git", *who, "commit", "-q", "--allow-empty", "-m", "init"],
        [dvc, "init", "-q"],
        [dvc, "repro", "-q", "prepare"],
    ):
        subprocess.run(command, cwd=repo, check=True, capture_output=True)
    return repo


def run_stages(repo: Path, cpu: str | None) -> dict[str, str]:
    """The check, train and evaluate stages, natively (``cpu`` None) or each under
    ``qemu-x86_64 -cpu cpu``; the results' digests."""
    prefix: list[str] = []
    if cpu is not None:
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            raise PipelineError("qemu-x86_64 not found: install it (apt-get install qemu-user)")
        prefix = [qemu, "-cpu", cpu]
    where = f"under qemu-x86_64 -cpu {cpu}" if cpu else "natively"
    for stage in ("check", "train", "evaluate"):
        print(f"{stage} {where} ...", flush=True)
        command = [*prefix, sys.executable, "-m", f"stages.{stage}"]
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
        if done.returncode != 0:
            raise PipelineError(f"stages.{stage} failed {where}: {done.stderr.strip()[-300:]}")
    code = "import json; from fmnist.review.verify import result_digests as d; "
    code += "print(json.dumps(d()))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench emulated-cpu", description=__doc__)
    parser.add_argument("--model", default="fastcnn")
    parser.add_argument("--cpu", default="Haswell-v4", help="a model of `qemu-x86_64 -cpu help`")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-emulated"))
    args = parser.parse_args(argv)
    repo = prepared_copy(args.work, args.model)
    native = run_stages(repo, None)
    emulated = run_stages(repo, args.cpu)
    pinned = json.loads((repo / "metrics/train.json").read_text())["train"]["kernels"]["pinned"]
    sides = {"native": native}
    if args.model == "fastcnn":
        sides["reference"] = json.loads(REFERENCE.read_text())["sha256"]
    for name, digest in emulated.items():
        same = [side for side, digests in sides.items() if digests[name] == digest]
        print(f"{name}: emulated {'=' if same else '!='} {', '.join(same or sides)}")
    same = all(d == emulated for d in sides.values())
    print(
        f"{args.model} on {args.cpu} (emulated, {'pinned' if pinned else 'NOT pinned'}): "
        f"{'identical to' if same else 'different from'} {' and '.join(sides)}"
    )
    if not same:
        sys.exit(1)

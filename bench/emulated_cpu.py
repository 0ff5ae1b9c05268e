"""Portable kernels on another CPU, without that CPU: the CI guard's small run trained and
evaluated under QEMU's emulation of another x86 CPU, compared bit for bit with
tests/reference/portable.json (made natively).

    python -m bench.emulated_cpu [--cpu Haswell-v4] [--work /tmp/fmnist-emulated]

Needs ``qemu-x86_64`` (Debian: ``apt-get install qemu-user``). QEMU answers the CPU's
identity questions (vendor, instruction sets, cache sizes) as the named model would, so
MKL, oneDNN and ATen choose their kernels as on that CPU; it computes every IEEE
operation exactly, as hardware does. What it cannot show is an approximate instruction
(``rsqrtps``, ``rcpps``), whose last bits differ between vendors' hardware: a path that
uses one differs here too, so a match means the run avoided them. About 4 minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.project_copy import GUARD_PROFILE, ROOT, copy_project
from fmnist.core.errors import PipelineError, run_stage

REFERENCE = ROOT / "tests/reference/portable.json"


def prepared_copy(work: Path) -> Path:
    """A git + DVC copy of the project on the guard's profile, its data prepared natively."""
    repo = work / "repo"
    if (repo / "data/prepared").is_dir():
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    copy_project(repo, GUARD_PROFILE)
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


def run_emulated(repo: Path, cpu: str) -> None:
    """The check, train and evaluate stages, each under ``qemu-x86_64 -cpu cpu``."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise PipelineError("qemu-x86_64 not found: install it (apt-get install qemu-user)")
    for stage in ("check", "train", "evaluate"):
        print(f"{stage} under qemu-x86_64 -cpu {cpu} ...", flush=True)
        command = [qemu, "-cpu", cpu, sys.executable, "-m", f"stages.{stage}"]
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
        if done.returncode != 0:
            raise PipelineError(f"stages.{stage} failed under QEMU: {done.stderr.strip()[-300:]}")


def compare(repo: Path) -> tuple[dict[str, bool], dict]:
    """Per result, whether it matches the reference; and the emulated run's kernels."""
    code = "import json; from fmnist.review.verify import result_digests as d; "
    code += "print(json.dumps(d()))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    digests = json.loads(out.stdout)
    reference = json.loads(REFERENCE.read_text())["sha256"]
    train = json.loads((repo / "metrics/train.json").read_text())["train"]
    return {name: digests[name] == reference[name] for name in reference}, train["kernels"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="Haswell-v4", help="a model of `qemu-x86_64 -cpu help`")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-emulated"))
    args = parser.parse_args()
    repo = prepared_copy(args.work)
    run_emulated(repo, args.cpu)
    matches, kernels = compare(repo)
    for name, same in matches.items():
        print(f"{'identical' if same else 'DIFFERENT'}  {name}")
    pinned = "pinned" if kernels["pinned"] else "NOT pinned"
    verdict = "identical to" if all(matches.values()) else "different from"
    made_on = json.loads(REFERENCE.read_text())["made_on"]["cpu"]
    print(f"{args.cpu} (emulated, {pinned}): {verdict} the reference made on {made_on}")
    if not all(matches.values()):
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)

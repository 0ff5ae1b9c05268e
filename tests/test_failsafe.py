"""Fail safe: a refused run keeps the last good results, every failure is one line, and
no input file can make a reader exhaust memory."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import pickle
import re
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import png_with_rows, python_stdout, synthetic_split
from helpers import dvc, dvc_repo, run, start

from fmnist.core import atomic
from fmnist.core.atomic import atomic_dir, atomic_path, write_json
from fmnist.core.errors import FormatError, PipelineError, run_stage
from fmnist.data import formats
from fmnist.data.datasets import FASHION_MNIST
from fmnist.data.sources import fetch
from fmnist.models import build_model, check_arch
from fmnist.serve.images import ImageError, load_image
from fmnist.train.checkpoint import load_checkpoint, save_checkpoint


def test_a_forged_idx_header_is_refused_before_decompressing(tmp_path: Path) -> None:
    # 8.7 MB of gzip whose header claims 2,551,020 images: under the flat 2 GiB cap, so
    # only the dataset's own count (60,000) stops it before gigabytes are inflated
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2_551_020, 28, 28))
        f.write(np.random.default_rng(0).bytes(8_700_000))
    assert 8_000_000 < path.stat().st_size < 9_500_000
    code = (  # VmHWM: this process's peak RSS (getrusage would count pytest's, forked)
        "import sys\n"
        "from pathlib import Path\n"
        "from fmnist.core.errors import FormatError\n"
        "from fmnist.data.datasets import FASHION_MNIST\n"
        "from fmnist.data.sources import verify_idx\n"
        "try:\n"
        "    verify_idx(FASHION_MNIST, Path(sys.argv[1]))\n"
        "except FormatError as exc:\n"
        "    print(exc)\n"
        "status = Path('/proc/self/status').read_text().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]) // 1024)\n"
    )
    message, peak_mb = python_stdout(code, str(path)).strip().splitlines()
    assert "claims 2,551,020 items, more than the 60,000" in message
    assert int(peak_mb) < 500


def test_idx_payload_is_read_into_one_buffer(tmp_path: Path) -> None:
    images, _ = synthetic_split(50, 0)
    path = tmp_path / "x.idx"
    path.write_bytes(formats.encode_idx(images))
    content = formats.read_idx_bytes(path, max_items=50)
    array = formats.parse_idx(content)
    assert np.array_equal(array, images)
    assert np.shares_memory(array, np.frombuffer(content, np.uint8))  # no second copy
    with pytest.raises(FormatError, match="claims 50 items, more than the 49"):
        formats.read_idx_bytes(path, max_items=49)


def test_a_named_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not a folder; fix the path"):
        fetch(FASHION_MNIST, tmp_path / "raw", "auto", folder=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="no complete copy of fashion-mnist"):
        fetch(FASHION_MNIST, tmp_path / "raw", "auto", folder=str(tmp_path / "empty"))
    assert not (tmp_path / "raw").exists()  # nothing half-written


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    images, labels = synthetic_split(20, 3)
    plain = tmp_path / "plain.csv"
    formats.write_csv(plain, images, labels)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    got_images, got_labels = formats.read_csv(bom)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)


def test_an_empty_csv_says_it_is_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FormatError, match="the file is empty"):
        formats.read_csv(empty)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (errno.ENOSPC, "the disk is full; free some space"),
        (errno.EACCES, "permission denied; make it writable"),
        (errno.EROFS, "the file system is read-only"),
    ],
)
def test_write_failures_are_one_line_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, said: str
) -> None:
    def refuse(*args: object) -> None:
        raise OSError(error, "refused")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    target = tmp_path / "metrics" / "train.json"
    with pytest.raises(PipelineError, match=re.escape(f"cannot write {target}: {said}")):
        write_json(target, {"a": 1})
    assert list(target.parent.iterdir()) == []  # the temporary file is gone too


def test_torch_save_on_a_full_disk_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 0

    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: Usage)
    full = pytest.raises(PipelineError, match=r"model\.pt: the disk is full")
    with full, atomic_path(tmp_path / "model.pt"):
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 623488")


def test_a_stage_turns_an_io_failure_into_one_line(capsys: pytest.CaptureFixture) -> None:
    def main() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "models/model.pt")

    with pytest.raises(SystemExit) as stop:
        run_stage(main)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "error: cannot write models/model.pt: the disk is full; free some space and run again"
    )


def test_a_refused_read_is_not_called_a_write(capsys: pytest.CaptureFixture) -> None:
    def main() -> None:
        raise OSError(errno.EACCES, "Permission denied", "/data/train.csv")

    with pytest.raises(SystemExit):
        run_stage(main)
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot access /data/train.csv: permission denied; check")


def test_a_stage_still_shows_a_bug_as_a_traceback() -> None:
    def main() -> None:
        raise OSError(errno.EBADF, "bad file descriptor")  # not the user's to fix

    with pytest.raises(OSError):
        run_stage(main)


def test_a_killed_writes_temporary_file_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".resume.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    with atomic_path(tmp_path / "resume.pt") as tmp:
        tmp.write_bytes(b"state")
    assert not stale.exists() and (tmp_path / "resume.pt").read_bytes() == b"state"
    stale_dir = tmp_path / ".raw.xyz.tmp"  # a download killed half-way
    (stale_dir / "part").mkdir(parents=True)
    with atomic_dir(tmp_path / "raw") as tmp:
        (tmp / "file").write_text("whole")
    assert not stale_dir.exists() and (tmp_path / "raw/file").read_text() == "whole"


class _Payload:
    def __reduce__(self):  # would run code if unpickled
        return (print, ("owned",))


def _saved(tmp_path: Path, **changes: object) -> Path:
    model = build_model("fastcnn", {"width": 8})
    path = tmp_path / "model.pt"
    save_checkpoint(
        path,
        model_name="fastcnn",
        arch={"width": 8},
        state_dict=model.state_dict(),
        classes=FASHION_MNIST.classes,
        in_shape=(1, 28, 28),
    )
    if changes:
        payload = torch.load(path, weights_only=True)
        for key, value in changes.items():
            if value is None:
                del payload[key]
            else:
                payload[key] = value
        torch.save(payload, path)
    return path


def test_a_code_running_checkpoint_is_refused_without_unsafe_advice(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"format": 1, "model": _Payload()}))
    with pytest.raises(PipelineError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "not a checkpoint that loads safely" in message and "\n" not in message
    assert "weights_only=False" not in message and "weights_only" not in message


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"input": None}, "input missing"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"classes": ["only one"]}, "1 classes"),
        ({"arch": {"width": 16}}, "weights do not fit its architecture options"),
        ({"arch": {"width": 200_000}}, "architecture is refused.*over half of this machine"),
        ({"arch": {"width": 10**9}}, "architecture is refused"),
        ({"arch": {"width": -3}}, "architecture is refused"),
    ],
)
def test_a_forged_checkpoint_is_refused_before_anything_is_built(
    tmp_path: Path, changes: dict, said: str
) -> None:
    path = _saved(tmp_path, **changes)
    with pytest.raises(PipelineError, match=said):
        load_checkpoint(path)


def test_nan_weights_and_a_forged_classic_model_are_refused_in_one_line(tmp_path: Path) -> None:
    state = build_model("fastcnn", {"width": 8}).state_dict()
    state = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in state.items()
    }
    with pytest.raises(PipelineError, match=r"weights are not all finite .*lower model.lr"):
        load_checkpoint(_saved(tmp_path, state_dict=state))
    path = tmp_path / "logreg.pt"
    save_checkpoint(
        path,
        model_name="logreg",
        arch={},
        state_dict={"coef": torch.zeros(3, 3)},
        classes=FASHION_MNIST.classes,
        in_shape=(1, 28, 28),
    )
    with pytest.raises(PipelineError, match=r"its weights do not fit its model"):
        load_checkpoint(path)


def test_the_model_size_is_judged_without_allocating_it() -> None:
    start = time.perf_counter()
    problems = check_arch("fastcnn", {"width": 4000})
    assert time.perf_counter() - start < 1.0
    assert len(problems) == 1 and "GiB to train" in problems[0]
    assert check_arch("fastcnn", {"width": 32}) == []


def test_predict_refuses_bad_options_before_any_work(tmp_path: Path, capsys) -> None:
    from fmnist.serve.predict import main as predict

    with pytest.raises(SystemExit):
        predict(["x.png", "--batch-size", "0"])
    assert "--batch-size: 0; use at least 1" in capsys.readouterr().err
    with pytest.raises(PipelineError, match=r"--csv: .*nowhere is not a folder"):
        predict(["x.png", "--csv", str(tmp_path / "nowhere" / "out.csv")])
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(fifo)


def test_a_missing_device_is_named_as_the_user_typed_it() -> None:
    from fmnist.train.device import select_device

    # Apple's GPU: absent on every Linux machine, the CI's included
    with pytest.raises(PipelineError, match=r"^--device is 'mps' but no mps device"):
        select_device("mps", "--device")


def test_the_registry_names_what_is_wrong_with_a_repo_or_an_artifact(tmp_path: Path) -> None:
    from fmnist.serve.registry import load

    with pytest.raises(PipelineError, match=r"is not a git repository"):
        load(repo=str(tmp_path))
    with pytest.raises(PipelineError, match=r"ONNX export runs in onnxruntime"):
        load("fashion-cnn-onnx", "v1.0.0", repo=str(tmp_path))


def test_a_valid_file_of_another_dataset_is_named(tmp_path: Path) -> None:
    from fmnist.data.datasets import MNIST
    from fmnist.data.sources import verify_idx

    debian = Path(FASHION_MNIST.debian_folder) / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(PipelineError, match=r"valid fashion-mnist file, not mnist's"):
        verify_idx(MNIST, debian)


def test_a_good_checkpoint_still_loads(tmp_path: Path) -> None:
    model, meta = load_checkpoint(_saved(tmp_path))
    assert meta["model"] == "fastcnn" and not model.training


# --- the real pipeline: a refused `dvc exp run -S ...` leaves every output as it was ---

SMALL = {
    ("prepare", "train_limit"): 600,
    ("prepare", "val_size"): 100,
    ("prepare", "test_limit"): 100,
    ("model", "epochs"): 1,
    ("model", "arch", "width"): 8,
}
REFUSED = {  # refused by stage check, in one line
    "model.lr=-1": "model.lr is -1.0; use a positive learning rate",
    "model.lr=inf": "model.lr is inf; use a positive learning rate",
    "train.seed=-5": "train.seed is -5; use 0 to",
    "prepare.seed=-1": "prepare.seed is -1; use 0 to",
    "prepare.test_limit=5": "prepare.test_limit is 5; use 0 (all)",
    "model.arch.width=100000": "over half of this machine's",
    "model.epochs=0": "model.epochs is 0; use at least 1",
    "model.batch_size=0": "model.batch_size is 0; use at least 1",
    "model.optimizer=adamm": "model.optimizer is 'adamm'; valid: adam",
    "prepare.val_size=70000": "prepare.val_size is 70000 but 600 training images",
    "data.dataset=svhn": "data.dataset is 'svhn'; valid: fashion-mnist",
    "model.name=nope": "model.name is 'nope'; valid names: bilstm, cifar-cnn",
    "train.reproducible=fast": "train.reproducible is 'fast'; valid: portable, fastest",
    "train.precision=bf16": "train.precision is bf16, but train.reproducible: portable",
}
NOT_COMPOSED = {  # refused by DVC's Hydra composition, before any stage runs
    "model=nope": "Could not find 'model/nope'",
    "model.ema=0.9": "To append to your config use +model.ema=0.9",
}


def _outputs(repo: Path) -> dict[str, str]:
    """Every file of the workspace but params.yaml and DVC's/git's own state, hashed."""
    skip = (".git/", ".dvc/", "params.yaml", "fmnist/", "stages/", "conf/")
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
        and not str(p.relative_to(repo)).startswith(skip)
        and "__pycache__" not in p.parts
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_refused_experiments_leave_every_output_as_it_was(tmp_path: Path) -> None:
    repo = dvc_repo(tmp_path / "repo", SMALL)
    dvc(repo, "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "a good run")
    before = _outputs(repo)
    assert "models/model.pt" in before and "data/raw/t10k-images-idx3-ubyte.gz" in before
    params = (repo / "params.yaml").read_bytes()
    for setting, message in (REFUSED | NOT_COMPOSED).items():
        refused = run(repo, "dvc", "exp", "run", "-S", setting, check=False)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0, f"{setting} was accepted:\n{output}"
        if setting in REFUSED:
            errors = [line for line in output.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and message in errors[0], f"{setting}:\n{output}"
        else:
            assert message in output and "Running stage" not in output, output
        assert _outputs(repo) == before, f"{setting} changed outputs"
        # written back, not `git checkout`: git misses a same-size edit (auto -> bf16)
        # made within the second its index entry was written
        (repo / "params.yaml").write_bytes(params)
    assert "up to date" in dvc(repo, "status")


def test_a_mostly_missing_image_is_predicted_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "partial.png"
    path.write_bytes(png_with_rows(2000, 2000, 10))
    image = load_image(path)
    assert image.size == (512, 512)  # shrunk as soon as it is decoded
    assert re.search(r"last 1,9\d\d of 2,000 rows are empty", capsys.readouterr().err)


def test_a_forged_huge_image_names_the_projects_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(png_with_rows(30_000, 30_000, 1))
    with pytest.raises(ImageError, match=re.escape("(over 50,000,000 pixels); resize it below")):
        load_image(path)


# --- the real pipeline: a run that fails after check keeps the last good outputs ---


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small repository after a good `dvc repro`, committed."""
    repo = dvc_repo(tmp_path_factory.mktemp("failures") / "repo", SMALL | {("model", "epochs"): 3})
    dvc(repo, "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "a good run")
    return repo


def _kept(repo: Path, before: dict[str, str]) -> None:
    """Every output as it was (dvc.lock may record that stage check passed; the lock
    file names the last training process)."""
    after = _outputs(repo)
    own = ("dvc.lock", "models/.train.lock", "models/resume.pt")
    changed = sorted(k for k in before if after.get(k) != before[k] and k not in own)
    assert changed == [], f"a failed run changed {changed}"
    (repo / "params.yaml").write_text(run(repo, "git", "show", "HEAD:params.yaml").stdout)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_run_that_diverges_after_check_keeps_the_last_good_model(good_run: Path) -> None:
    before = _outputs(good_run)
    failed = run(good_run, "dvc", "exp", "run", "-S", "model.lr=1e12", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "diverged" in output, output
    _kept(good_run, before)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_full_disk_keeps_the_last_good_model(good_run: Path, tmp_path: Path) -> None:
    """models/ on a file system just big enough for the files it holds (a mount
    namespace: only this command sees it): the first new checkpoint cannot be written,
    the run fails in one line, and the old files stay."""
    script = tmp_path / "full.sh"
    script.write_text(
        "set -e\n"
        "size=$(( $(du -sk models | cut -f1) + 8 ))\n"
        "cp -a models /tmp/models.$$ && mount -t tmpfs -o size=${size}k tmpfs models\n"
        "cp -a /tmp/models.$$/. models/ && rm -rf /tmp/models.$$\n"
        "before=$(sha256sum models/model.pt)\n"
        "if dvc exp run -S train.seed=7 > out.txt 2>&1; then echo ACCEPTED; exit 1; fi\n"
        "grep -q 'the disk is full' out.txt || { cat out.txt; exit 1; }\n"
        '[ "$(sha256sum models/model.pt)" = "$before" ] && echo KEPT\n'
    )
    before = _outputs(good_run)
    done = run(good_run, "unshare", "-m", "sh", str(script), check=False)
    assert "KEPT" in done.stdout, done.stdout + done.stderr
    _kept(good_run, before)


@pytest.mark.e2e
@pytest.mark.slow
def test_killing_dvc_stops_its_stage_and_keeps_the_last_good_model(good_run: Path) -> None:
    before = _outputs(good_run)
    with start(
        good_run, "dvc", "exp", "run", "-S", "train.seed=8", "-S", "model.epochs=30"
    ) as proc:
        deadline = time.monotonic() + 300
        while not _training(good_run) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _training(good_run), "the train stage never started"
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while _training(good_run) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _training(good_run), "the stage outlived the dvc process that started it"
    _kept(good_run, before)


def _training(repo: Path) -> bool:
    """Whether a `python -m stages.train` of ``repo`` is running."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if b"stages.train" in cmdline and Path(cwd) == repo:
            return True
    return False


@pytest.mark.slow
def test_a_second_training_in_one_workspace_is_refused(good_run: Path) -> None:
    params = good_run / "params.yaml"
    committed = params.read_text()
    params.write_text(committed.replace("epochs: 3", "epochs: 300"))  # the first runs long
    env = {"PYTHONPATH": str(good_run)}
    first = start(good_run, sys.executable, "-m", "stages.train", **env)
    try:
        deadline = time.monotonic() + 60
        lock = good_run / "models/.train.lock"
        mine = f"pid {first.pid}"  # an earlier run's pid may be in the file already
        while not (lock.is_file() and mine in lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, "the first training ended before the second started"
        second = run(good_run, sys.executable, "-m", "stages.train", check=False, **env)
        assert second.returncode == 2, second.stderr
        assert f"another training run (pid {first.pid}) is writing models/" in second.stderr
    finally:
        first.kill()
        first.wait()
        params.write_text(committed)

"""Stage train: train the selected model with its recipe from params.yaml."""

import os
import sys

from fmnist.core import layout
from fmnist.core.errors import run_stage
from fmnist.train.outputs import run_training
from fmnist.train.params import load_params


def main() -> None:
    params = load_params(layout.PARAMS)
    if params.train.launcher == "torchrun" and "LOCAL_RANK" not in os.environ:
        # re-run this stage under torchrun: one process per device, rank 0 writes outputs
        nproc = f"--nproc_per_node={params.train.nproc}"
        run = [sys.executable, "-m", "torch.distributed.run", "--standalone", nproc]
        os.execv(sys.executable, [*run, "-m", "stages.train"])
    result = run_training(params)
    if not result:
        return  # a DDP process other than rank 0
    info = result["train"]
    kept = (
        f"best val accuracy {info['best_val_accuracy']:.4f} (epoch {info['best_epoch']})"
        if info["val_held_out"]
        else f"epoch {info['best_epoch']} of train+val"
    )
    print(f"{layout.MODEL}: {info['model']}, {kept}, {info['seconds']:.0f}s on {info['device']}")


if __name__ == "__main__":
    run_stage(main)

"""Stage train: train the selected model with its recipe from params.yaml."""

from fmnist import layout
from fmnist.errors import run_stage
from fmnist.params import load_params
from fmnist.training import run_training


def main() -> None:
    info = run_training(load_params(layout.PARAMS))["train"]
    print(
        f"{layout.MODEL}: {info['model']}, best val accuracy {info['best_val_accuracy']:.4f} "
        f"(epoch {info['best_epoch']}), {info['seconds']:.0f}s on {info['device']}"
    )


if __name__ == "__main__":
    run_stage(main)

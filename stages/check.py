"""Stage check: validate all of params.yaml before any other stage runs, and write what
each stage reads, resolved (the selected model's recipe, not ``models.${model}``).

DVC removes a stage's outputs before running it, so a param refused inside the train
stage would already have cost the last good model. Every stage depends on one of the
files written here, so a refused value stops ``dvc repro`` / ``dvc exp run`` here, with
every output as it was. Each file holds exactly the params its stage reads, so editing
another model's recipe, say, changes no file and reruns nothing downstream.
"""

from dataclasses import asdict

from fmnist.core import layout
from fmnist.core.atomic import write_json
from fmnist.core.errors import run_stage
from fmnist.train.params import Params, load_params


def resolved(params: Params) -> dict[str, dict]:
    """Per stage, the params it reads."""
    train = asdict(params.train)
    return {
        "download": {"data": asdict(params.data)},
        "prepare": {"data": {"dataset": params.data.dataset}, "prepare": asdict(params.prepare)},
        "train": {
            "data": {"dataset": params.data.dataset},
            "model": params.model,
            "recipe": asdict(params.recipe),
            "train": train,
        },
        "evaluate": {
            "evaluate": asdict(params.evaluate),
            "train": {
                key: train[key] for key in ("device", "precision", "reproducible", "threads")
            },
        },
    }


def main() -> None:
    params = load_params(layout.PARAMS)
    for stage, values in resolved(params).items():
        write_json(layout.RESOLVED / f"{stage}.json", values)
    print(f"{layout.PARAMS}: valid; model {params.model}")


if __name__ == "__main__":
    run_stage(main)

"""Stage check: validate all of params.yaml before any other stage runs.

DVC removes a stage's outputs before running it, so a param refused inside the train
stage would already have cost the last good model. Every stage depends on the mark this
stage writes, so a refused value stops ``dvc repro`` / ``dvc exp run`` here, with every
output as it was. The mark's content never changes: which params each stage reads is
its own ``params:`` list in dvc.yaml, so a valid edit reruns only the stages that read it.
"""

from fmnist.core import layout
from fmnist.core.atomic import write_text
from fmnist.core.errors import run_stage
from fmnist.train.params import load_params

MARK = "params.yaml passed stage check (stages/check.py); every stage runs after it\n"


def main() -> None:
    params = load_params(layout.PARAMS)
    write_text(layout.CHECKED, MARK)
    print(f"{layout.PARAMS}: valid; model {params.model}")


if __name__ == "__main__":
    run_stage(main)

"""Stage evaluate: test-set metrics, confusion matrix and prediction figures."""

from fmnist.core import layout
from fmnist.core.errors import run_stage
from fmnist.evaluate.evaluation import run_evaluation
from fmnist.train.params import load_params


def main() -> None:
    test = run_evaluation(load_params(layout.PARAMS))["test"]
    print(f"{layout.METRICS_JSON}: test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}")


if __name__ == "__main__":
    run_stage(main)

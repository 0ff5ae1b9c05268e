"""Stage report: one self-contained HTML page of the run (opens offline, no scripts)."""

from fmnist.core.errors import run_stage
from fmnist.evaluate.report import write_report


def main() -> None:
    print(f"{write_report()}: open it in any browser, no network needed")


if __name__ == "__main__":
    run_stage(main)

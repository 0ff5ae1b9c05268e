"""Stage download: fetch the raw dataset files and verify their content checksums."""

from fmnist.core import layout
from fmnist.core.errors import run_stage
from fmnist.data.datasets import DATASETS
from fmnist.data.params import load_data_params
from fmnist.data.sources import fetch


def main() -> None:
    data, _ = load_data_params(layout.PARAMS)
    fetched = fetch(DATASETS[data.dataset], layout.RAW, data.source, data.folder, data.url)
    print(
        f"{layout.RAW}: {len(fetched.checksums)} {fetched.form.upper()} files from "
        f"{fetched.origin}, content checksums verified"
    )


if __name__ == "__main__":
    run_stage(main)

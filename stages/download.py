"""Stage download: fetch the raw dataset files and verify their content checksums."""

from fmnist import layout
from fmnist.datasets import DATASETS
from fmnist.errors import run_stage
from fmnist.params import load_params
from fmnist.sources import fetch


def main() -> None:
    params = load_params(layout.PARAMS)
    data = params.data
    fetched = fetch(DATASETS[data.dataset], layout.RAW, data.source, data.folder, data.url)
    print(
        f"{layout.RAW}: {len(fetched.checksums)} {fetched.form.upper()} files from "
        f"{fetched.origin}, content checksums verified"
    )


if __name__ == "__main__":
    run_stage(main)

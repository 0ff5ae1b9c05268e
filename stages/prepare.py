"""Stage prepare: read the raw files, split train/validation, write uint8 arrays + exploration."""

from fmnist.core import layout
from fmnist.core.atomic import atomic_dir
from fmnist.core.errors import run_stage
from fmnist.data.datasets import DATASETS
from fmnist.data.params import load_data_params
from fmnist.data.prepared import read_raw, save_split, split_train_val, stratified_subset
from fmnist.evaluate.exploration import explore


def main() -> None:
    data, p = load_data_params(layout.PARAMS)
    spec = DATASETS[data.dataset]
    published, form = read_raw(spec, layout.RAW)
    train = stratified_subset(published["train"], p.train_limit, p.seed)
    test = stratified_subset(published["test"], p.test_limit, p.seed)
    fit, val = split_train_val(train, p.val_size, p.seed)
    splits = {"train": fit, "val": val, "test": test}
    with atomic_dir(layout.PREPARED) as tmp:  # all three splits appear together, or none
        for name, split in splits.items():
            save_split(tmp / layout.split_path(name).name, split)
    explore(spec, splits, form)
    print(f"{layout.PREPARED}: " + ", ".join(f"{k} {len(v):,}" for k, v in splits.items()))


if __name__ == "__main__":
    run_stage(main)

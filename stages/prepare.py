"""Stage prepare: read the raw files, split train/validation, write uint8 arrays + exploration."""

from fmnist import layout
from fmnist.atomic import atomic_dir
from fmnist.datasets import DATASETS
from fmnist.errors import run_stage
from fmnist.exploration import explore
from fmnist.params import load_params
from fmnist.prepared import read_raw, save_split, split_train_val, stratified_subset


def main() -> None:
    params = load_params(layout.PARAMS)
    spec, p = DATASETS[params.data.dataset], params.prepare
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

"""The runs: every experiment, branch tip and workspace of `dvc exp show --json -A` as one
:class:`Row` (model, recipe in words, time, device, test accuracy, the report's claim)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fmnist.core.errors import PipelineError
from fmnist.data.params import PrepareParams
from fmnist.models.registry import arch_defaults
from fmnist.review.reference import REPORTED
from fmnist.train.params import selected_recipe


@dataclass(frozen=True)
class Row:
    """One experiment's figures."""

    experiment: str
    model: str
    recipe: str
    epochs_run: int
    best_epoch: int
    seconds: float
    seconds_per_epoch: float
    device: str
    test_accuracy: float  # percent
    reported: float | None  # percent, from the model's report
    note: str = ""
    comparable: bool = True
    seed: int | None = None
    peak_mb: int | None = None  # the train stage's peak memory; runs before it was recorded: None

    @property
    def difference(self) -> float | None:
        if self.reported is None or not self.comparable:
            return None
        return round(self.test_accuracy - self.reported, 2)


def _revisions(exp_show: list[dict[str, Any]]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(rank, name, entry) for every experiment, branch tip and the workspace in the JSON.

    The rank orders names when two revisions hold the same results (an experiment that was
    committed, say): an experiment's name first, then a branch, the workspace.
    A commit that no branch or tag names is an older state of a branch: its own results
    are the pipeline's history (each past `dvc repro` of the default model would be a row
    of its own, with the same accuracy and another time), so only its experiments count.
    """
    for entry in exp_show:
        rev = entry.get("rev", "")
        if rev == "workspace":
            yield 2, "workspace", entry
        elif entry.get("name"):
            yield 1, entry["name"], entry
        for experiment in entry.get("experiments") or []:
            for exp in experiment.get("revs") or []:
                yield 0, exp.get("name") or exp.get("rev", "")[:7], exp


def rows_from_exp_show(exp_show: list[dict[str, Any]]) -> list[Row]:
    """One row per distinct result (the best-named revision holding it), best first."""
    best: dict[tuple, tuple[int, Row]] = {}
    for rank, name, rev in _revisions(exp_show):
        row = _row(name, rev.get("data") or {})
        if row is None:
            continue
        key = (row.model, row.recipe, row.test_accuracy, row.seconds, row.device)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, row)
    rows = [row for _, row in best.values()]
    return sorted(rows, key=lambda r: (-r.test_accuracy, r.experiment))


def _row(name: str, data: dict[str, Any]) -> Row | None:
    metrics = data.get("metrics") or {}
    test = ((metrics.get("metrics/metrics.json") or {}).get("data") or {}).get("test")
    train = ((metrics.get("metrics/train.json") or {}).get("data") or {}).get("train")
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    if not test or not train or "model" not in params:
        return None
    model, recipe = selected_recipe(params)  # either shape: conf/model/ or every recipe
    recipe = recipe or {}
    if not _same_run(train, model, recipe):
        return None
    reported = REPORTED.get(model)
    return Row(
        experiment=name,
        model=model,
        recipe=describe_recipe(model, recipe, params.get("prepare") or {}),
        epochs_run=int(train.get("epochs_run", 0)),
        best_epoch=int(train.get("best_epoch", 0)),
        seconds=float(train.get("seconds", 0.0)),
        seconds_per_epoch=float(train.get("seconds_per_epoch", 0.0)),
        device=_device(train),
        test_accuracy=round(100 * float(test["accuracy"]), 2),
        reported=reported.accuracy if reported else None,
        note=_note(reported),
        comparable=reported.comparable if reported else True,
        seed=(params.get("train") or {}).get("seed"),
        peak_mb=train.get("peak_memory_mb"),
    )


def _device(train: dict[str, Any]) -> str:
    """The device, with ``bf16`` when the run trained under bf16 autocast: its times (and
    its rounding) are not fp32's, so its seeds are summarised apart."""
    device = str(train.get("device", "?"))
    return f"{device} bf16" if train.get("precision") == "bf16" else device


def _same_run(train: dict[str, Any], model: str, recipe: dict[str, Any]) -> bool:
    """Whether the metrics were produced by these params. A failed experiment, or a commit
    that changed a recipe without rerunning, carries older metrics beside newer params:
    such a revision is left out rather than credited with another run's accuracy."""
    recorded = {"model": model}
    for key, train_key in (("lr", "lr"), ("batch_size", "batch_size"), ("epochs", "max_epochs")):
        if key in recipe and train_key in train:
            recorded[train_key] = recipe[key]
    return all(train.get(k, v) == v for k, v in recorded.items())


def _note(reported: Any) -> str:
    if reported is None:
        return ""
    source = (
        "publisher's benchmark" if reported.report == "benchmark" else f"report {reported.report}"
    )
    return source + (f": {reported.note}" if reported.note else "")


DEFAULT_VAL_SIZE = PrepareParams().val_size


def describe_recipe(
    model: str, recipe: dict[str, Any], prepare: dict[str, Any] | None = None
) -> str:
    if "optimizer" not in recipe:  # a classic baseline: its options are the recipe
        options = ", ".join(_option(k, v) for k, v in (recipe.get("arch") or {}).items())
        return f"scikit-learn ({options})" if options else "scikit-learn"
    parts = [
        str(recipe.get("optimizer", "?")),
        f"lr {recipe.get('lr', '?')}",
        f"batch {recipe.get('batch_size', '?')}",
        f"{recipe.get('epochs', '?')} ep",
    ]
    if recipe.get("momentum"):
        parts.append(
            f"momentum {recipe['momentum']}" + (" nesterov" if recipe.get("nesterov") else "")
        )
    if recipe.get("weight_decay"):
        spared = "" if recipe.get("decay_norms", True) else " (not on norms, biases)"
        parts.append(f"wd {recipe['weight_decay']}{spared}")
    if recipe.get("schedule", "none") != "none":
        parts.append(str(recipe["schedule"]))
    if recipe.get("train_on", "train") != "train":
        parts.append(f"on {recipe['train_on']}")
    val_size = (prepare or {}).get("val_size", DEFAULT_VAL_SIZE)
    if val_size != DEFAULT_VAL_SIZE:  # another split is another recipe (report A's 10 %)
        parts.append(f"{val_size} held out")
    if recipe.get("patience"):
        parts.append(f"patience {recipe['patience']}")
    augment = [_option(k, v) for k, v in (recipe.get("augment") or {}).items() if v]
    if augment:
        parts.append(f"augment ({', '.join(augment)})")
    if recipe.get("tta_shift"):  # flip TTA is the modern recipes' default, shifts are not
        parts.append(f"TTA shift {recipe['tta_shift']}")
    return ", ".join(parts + _arch_changes(model, recipe.get("arch") or {}))


def _option(key: str, value: Any) -> str:
    return key if value is True else f"{key} {value}"


def _arch_changes(model: str, arch: dict[str, Any]) -> list[str]:
    """The arch options that differ from the model's defaults (``width 48``): two runs of
    one model with other layers must not read as the same recipe."""
    try:
        defaults = arch_defaults(model)
    except PipelineError:  # a model this checkout no longer registers
        return [_option(k, v) for k, v in arch.items()]
    return [_option(k, v) for k, v in arch.items() if defaults.get(k, v) != v]

"""The user-facing docs hold: README.md is short and its commands exist, every generated
table matches its JSON, and every results file says which command and machine made it."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from fmnist.review.docs import rendered
from fmnist.review.tables import markdown_table, number

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_generated_tables_match_their_json() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in rendered(ROOT).items()
        if not path.is_file() or path.read_text() != text
    ]
    assert stale == [], f"run `python -m fmnist.review.docs`: stale {stale}"


def test_numbers_print_rounded() -> None:
    assert number(7.050000000000001) == "7.05" and number(3.0) == "3" and number(None) == ""
    assert number(60000) == "60,000" and number(True) == "yes" and number(42) == "42"
    table = markdown_table([("m", "model"), ("r", "ratio", "{:.2f}x")], [{"m": "a", "r": 3.1}])
    assert table.splitlines()[2] == "| a | 3.10x |"


def test_every_results_file_says_how_and_where_it_was_made() -> None:
    results = ROOT / "results"
    payloads = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    assert payloads, "results/ holds no JSON"
    docs_text = "\n".join(p.read_text() for p in DOCS)
    images = {image for p in payloads.values() for image in p.get("images", [])}
    for name, payload in payloads.items():
        machine = payload["machine"]
        assert machine["cpu"] and isinstance(machine["isa"], list) and machine["torch"], name
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", payload["date"]), name
        module = payload["command"].split("python -m ", 1)[1].split()[0]
        assert module in docs_text, f"results/{name}.json: {module} is named nowhere in docs/"
    for path in results.iterdir():
        made = path.stem in payloads if path.suffix in (".json", ".md") else path.name in images
        assert made, f"results/{path.name} is made by no command (retire it or record one)"


def test_readme_is_a_short_guide_without_session_history() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 12_000
    assert not re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", text), "commit id"
    for phrase in ("latest check", "this session", "latest run", "on this hour"):
        assert phrase not in text.lower()
    for page in [README, *DOCS]:  # the reference folder lives outside a clone
        assert "shared/reference" not in page.read_text(), page.name


def shell_commands(text: str) -> list[list[str]]:
    """The commands in the README's ```bash blocks, comments and continuations removed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def test_every_readme_command_names_something_that_exists() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    dvc_subcommands = set()
    for words in shell_commands(README.read_text()):
        program = words[0]
        if program == "python":
            module = words[words.index("-m") + 1]
            assert importlib.util.find_spec(module), f"README runs python -m {module}"
        elif program == "dvc":
            dvc_subcommands.add(" ".join(w for w in words[1:3] if not w.startswith("-")))
        elif program.startswith("./"):
            assert (ROOT / program).is_file(), program
        elif program == "source":
            assert words[1] == ".venv/bin/activate"
        else:
            assert f'{program} = "' in pyproject, f"README runs {program}, not a console script"
    for sub in sorted(dvc_subcommands):
        words = sub.split()
        help_run = subprocess.run(
            [sys.executable, "-m", "dvc", *words[:2], "--help"], capture_output=True, cwd=ROOT
        )
        if help_run.returncode != 0:  # "exp run" is two words; "metrics diff" too
            help_run = subprocess.run(
                [sys.executable, "-m", "dvc", words[0], "--help"], capture_output=True, cwd=ROOT
            )
        assert help_run.returncode == 0, f"README runs dvc {sub}"


def test_the_cheap_readme_commands_run_as_written() -> None:
    for words in (
        ["python", "-m", "stages.list"],
        ["python", "-m", "fmnist.review.docs", "--check"],
    ):
        assert words in shell_commands(README.read_text()) or words[2] == "fmnist.review.docs"
        run = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr


def test_the_pipeline_drawing_is_dvc_yamls_graph() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

    def paths(entries: list) -> list[str]:
        return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]

    producer = {}
    for name, spec in stages.items():
        for out in paths(spec.get("outs")) + paths(spec.get("metrics")):
            producer[out] = name
    edges = set()
    for name, spec in stages.items():
        for dep in paths(spec.get("deps")):
            for out, source in producer.items():
                inside = dep.startswith(out + "/") or out.startswith(dep + "/")
                if dep == out or inside:
                    edges.add((source, name))
    drawn = re.search(r"```mermaid\n(.*?)```", README.read_text(), re.S).group(1)
    assert set(re.findall(r"(\w+) --> (\w+)", drawn)) == edges


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_docs_links_point_at_files_that_exist(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith("http"):
            assert (page.parent / target).exists(), f"{page.name} links {target}"


def test_the_speedrun_table_is_the_one_the_recorded_runs_give() -> None:
    from fmnist.review.speedrun import speedrun

    recorded = json.loads((ROOT / "results/speedrun.json").read_text())
    assert recorded["rows"] == speedrun(ROOT / "results")["rows"], (
        "results/speedrun.json is stale: run python -m fmnist.review.speedrun"
    )

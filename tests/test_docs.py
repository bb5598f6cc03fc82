"""The documents that state facts of the code are checked against the code, so they cannot drift.

- docs/procedure.md's table of steps: every step of the built-in processes, once, under its
  process's title, with its source word for word and its clock's default lengths.
- No document, comment or docstring points outside the repository: the repository stands alone
  for whoever picks it up.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from models.processes import build_registry

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (?P<process>[^|]+) \| `(?P<step>[a-z0-9-]+)`[^|]* "
                 r"\| (?P<due>[^|]+) \| (?P<source>[^|]+) \|$")


def _step_rows() -> dict[str, dict[str, str]]:
    text = (ROOT / "docs" / "procedure.md").read_text(encoding="utf-8")
    rows: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        found = ROW.match(line)
        if found is not None:
            assert found["step"] not in rows, f"{found['step']} is in the table twice"
            rows[found["step"]] = {name: value.strip() for name, value in found.groupdict().items()}
    return rows


def test_the_procedures_table_of_steps_is_the_registrys() -> None:
    registry = build_registry()
    rows = _step_rows()
    assert set(rows) == set(registry.steps), "docs/procedure.md's table and the registry's steps differ"
    for process in registry.processes:
        for step in process.steps:
            row = rows[step.step]
            assert row["process"] == process.title, step.step
            assert row["source"] == step.source, step.step
            for default in (setting.default for setting in step.clock.settings()):
                assert re.search(rf"\b{default}\b", row["due"]), (step.step, default, row["due"])


def test_a_changed_source_would_fail_the_table_check() -> None:
    # The check above compares sources word for word: shown here on one row, so it cannot pass
    # by matching nothing.
    rows = _step_rows()
    assert rows["sin-submission"]["source"] == "Children Act 2004 s16C; GOV.UK guidance"
    assert len(rows) >= 20


# What would point a reader outside the repository: a design or style note that is not here, or a
# numbered issue from a tracker they may not have.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|shared/reference|\.\./shared|\bissues? \d+\b|§\s?\d")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the files to check are the tracked ones")
    suffixes = {".py", ".md", ".toml", ".txt", ".html", ".cfg", ".ini", ".yaml", ".yml", ".j2", ""}
    return [ROOT / name for name in listed.stdout.splitlines()
            if Path(name).suffix in suffixes and (ROOT / name).is_file() and name != "tests/test_docs.py"]


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert found == [], "\n".join(found)

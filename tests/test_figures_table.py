"""The reliability table says what the tests recorded, losses above all: a row
that lost something shows its number, the totals add it up, and the headline never says "nothing"
unless every row reported 0."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.figures import record_figure
from tests.figures_table import main, read_rows, render

WHEN = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the table under `## heading`."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("| ") and not line.startswith("| what")]


def test_rows_are_rendered_under_their_kind_with_counts_losses_and_details() -> None:
    text = render([
        {"kind": "fault", "what": "serve killed while waiting", "injected": 3, "lost": 0},
        {"kind": "input", "what": "referral: zero-width | RTL", "tried": 500, "lost": 0, "refused": 500},
        {"kind": "load", "what": "decisions racing", "held": 36, "lost": 0, "seconds": 0.5},
        {"kind": "load", "what": "decisions racing", "held": 36, "lost": 0, "seconds": 0.75},
    ], when=WHEN)
    assert "Lost: **nothing** (0 in every row)." in text
    assert "Generated 2026-12-04 12:00 UTC" in text
    assert table_rows(text, "Faults injected") == [["serve killed while waiting", "3", "0", ""],
                                                   ["**total**", "**3**", "0", ""]]
    # A pipe in a name is escaped, so it cannot split the row; extra keys are shown as details.
    assert table_rows(text, "Inputs tried")[0] == ["referral: zero-width \\| RTL", "500", "0", "refused 500"]
    # The same test run twice: its counts add up, the slowest time is kept.
    assert table_rows(text, "Load held")[0] == ["decisions racing", "72", "0", "seconds 0.75, 2 runs"]


def test_a_row_that_lost_something_shows_it_in_the_row_the_total_and_the_headline() -> None:
    text = render([
        {"kind": "fault", "what": "SMTP down for a day", "injected": 1, "lost": 0},
        {"kind": "fault", "what": "PostgreSQL restarted under load", "injected": 40, "lost": 2},
        {"kind": "load", "what": "decisions racing", "held": 10, "lost": 1},
    ], when=WHEN)
    assert "nothing" not in text.lower()
    assert "Lost: **3 lost**" in text
    faults = table_rows(text, "Faults injected")
    assert faults[1] == ["PostgreSQL restarted under load", "40", "**2 lost**", ""]
    assert faults[-1] == ["**total**", "**41**", "**2 lost**", ""]
    assert table_rows(text, "Load held")[-1] == ["**total**", "**10**", "**1 lost**", ""]


def test_a_row_without_its_losses_is_never_counted_as_nothing_lost() -> None:
    text = render([{"kind": "input", "what": "forms: huge payloads", "tried": 20},
                   {"kind": "input", "what": "referral: CRLF", "tried": 30, "lost": 0}], when=WHEN)
    assert "nothing" not in text.lower()
    assert "1 row(s) did not report what was lost" in text
    assert table_rows(text, "Inputs tried")[0][2] == "**not reported** (1 of 1 runs)"
    assert table_rows(text, "Inputs tried")[-1][2] == "**not all reported**"


def test_no_figures_at_all_is_said_plainly() -> None:
    text = render([], when=WHEN)
    assert "No figures were recorded" in text
    assert "nothing" not in text.lower()


def test_record_figure_appends_lines_that_the_script_turns_into_the_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    figures = tmp_path / "new" / "figures.jsonl"  # its folder does not exist yet
    monkeypatch.setenv("SBU_FIGURES_FILE", str(figures))
    record_figure(kind="load", what="cases at once", held=8, lost=0)
    record_figure(kind="fault", what="server stopped", injected=1, lost=1)
    assert [json.loads(line)["what"] for line in figures.read_text().splitlines()] == \
        ["cases at once", "server stopped"]
    assert read_rows(figures)[1]["lost"] == 1
    document = tmp_path / "docs" / "RELIABILITY.md"
    assert main([str(figures), str(document)]) == 0
    assert "Lost: **1 lost**" in capsys.readouterr().out
    assert table_rows(document.read_text(), "Faults injected")[0] == ["server stopped", "1", "**1 lost**", ""]


def test_without_the_setting_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SBU_FIGURES_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    record_figure(kind="load", what="x", held=1, lost=0)
    assert list(tmp_path.iterdir()) == []

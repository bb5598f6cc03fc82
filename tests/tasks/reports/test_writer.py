"""The report's files: valid PNG charts of the size drawn, Markdown and HTML that say what they
count (the HTML escaping what it prints), and the CSV's rows, for the cases of
tests/tasks/report_cases.py."""

from __future__ import annotations

import csv
import struct
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from models.calendar import WorkingDayCalendar
from models.clock import FixedClock
from models.processes import build_registry
from models.reporting import ReportFigures, report_figures
from models.schedules import Period
from models.settings import Settings
from tasks.reports import charts
from tasks.reports.writer import default_folder, write_report
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW
from tests.tasks.report_cases import AS_OF, AWAITING, CLOSED, NEAR_MISS, NOTIFIED, YEAR, drive_cases

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportFigures]:
    data_dir = tmp_path_factory.mktemp("report-cases")
    settings = Settings(data_dir=data_dir)
    store = Store(settings.sqlalchemy_url).migrate()
    clock = FixedClock(EXAMPLE_NOW)
    service = CaseService(store=store, settings=settings, clock=clock)
    drive_cases(service, clock)
    yield report_figures(service.list_cases(), period=YEAR, as_of=AS_OF, calendar=service.calendar,
                         partnership="default", registry=service.registry)
    store.dispose()


def png_size(path: Path) -> tuple[int, int]:
    """The width and height a PNG file declares, after checking it is one: the signature, then the
    IHDR chunk first, as the PNG specification requires."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR"), path
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", path  # ends with its IEND chunk
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_report_writes_its_files_and_valid_charts(figures: ReportFigures, tmp_path: Path) -> None:
    said: list[str] = []
    files = write_report(figures, folder=tmp_path / "report", with_csv=True, progress=said.append)
    assert files.folder == tmp_path / "report"
    assert [path.name for path in files.charts] == [
        "timeliness.png", "action-ages.png", *(f"timeline-{ref}.png"
                                               for ref in (NOTIFIED, NEAR_MISS, CLOSED, AWAITING))]
    written = [path for path in files.folder.rglob("*") if path.is_file()]
    assert sorted(written) == sorted(files.every_file)
    sizes = {path.name: png_size(path) for path in files.charts}
    # Drawn 10 inches wide at 100 dpi, 0.42 inch a step: 17 steps.
    assert sizes["timeliness.png"] == (1000, int((0.42 * 17 + 1.6) * charts.DPI))
    assert sizes["action-ages.png"] == (700, 360)
    assert sizes[f"timeline-{NOTIFIED}.png"] == (1100, int((0.36 * 21 + 1.8) * charts.DPI))  # 21 items
    assert sizes[f"timeline-{AWAITING}.png"] == (1100, 300)  # one item: the least height
    for path in files.charts:
        assert path.stat().st_size > 5_000, path  # drawn, not blank
    assert said[0] == "drawing chart 1 of 6: timeliness per step"
    assert said[-1] == "writing cases.csv"


def test_the_documents_say_what_they_count_and_show_the_charts(figures: ReportFigures,
                                                               tmp_path: Path) -> None:
    files = write_report(figures, folder=tmp_path, with_csv=False)
    assert files.csv is None
    assert not (tmp_path / "cases.csv").exists()
    markdown = files.markdown.read_text()
    assert markdown.startswith("# Safeguarding reviews: cases referred 2026-04-01 to 2027-03-31\n")
    assert "Figures as they stood on 2027-01-21." in markdown
    assert "counts the cases whose referral the SBU received in the period" in markdown
    assert f"Cases counted: 4 ({NOTIFIED}, {NEAR_MISS}, {CLOSED}, {AWAITING})." in markdown
    assert ("| rr-agency-responses | Agency information for the Rapid Review | 2 | 2 | 2 | 0 | 2.5 |"
            in markdown)
    assert "Items done on time: 8; done late: 4 (67% of those done were on time); open and overdue: 4;" \
        in markdown
    assert "Rapid Reviews started: 2; of those, a CSPR commissioned: 1 (50%)." in markdown
    assert "| SR-2026-0002 | a1 | health | 2027-01-13 | 2027-01-20 | 6 | yes |" in markdown
    assert "![Timeliness per step](charts/timeliness.png)" in markdown
    assert f"![Timeline of {NOTIFIED}](charts/timeline-{NOTIFIED}.png)" in markdown
    assert "## What each figure means" in markdown
    html = files.html.read_text()
    for chart in ("charts/timeliness.png", "charts/action-ages.png", f"charts/timeline-{NOTIFIED}.png"):
        assert f'<img src="{chart}"' in html
        assert (tmp_path / chart).is_file()
    assert "<td>rr-agency-responses</td><td>Agency information for the Rapid Review</td>" in html
    # The report names no person: the officer and the reviewer recorded for these cases are not in it.
    for text in (markdown, html):
        assert "sbu-officer" not in text
        assert "Pat Reviewer" not in text


def test_the_html_escapes_what_it_prints_and_the_markdown_keeps_its_tables(figures: ReportFigures,
                                                                           tmp_path: Path) -> None:
    # A registered process's step title is written in code, not typed; even so, the HTML escapes
    # it and a Markdown table cell cannot be broken by it.
    odd = replace(figures.timeliness[0], title='<script>alert("x")</script> & | co')
    files = write_report(replace(figures, timeliness=(odd, *figures.timeliness[1:])), folder=tmp_path,
                         with_csv=False)
    html = files.html.read_text()
    assert "<script>" not in html
    assert "<td>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; | co</td>" in html
    markdown = files.markdown.read_text()
    assert '| dsp-decision | <script>alert("x")</script> & \\| co | 3 | 0 | 0 | 1 | - |' in markdown


def test_the_csv_has_one_row_per_case_for_the_national_returns(figures: ReportFigures,
                                                               tmp_path: Path) -> None:
    files = write_report(figures, folder=tmp_path, with_csv=True)
    assert files.csv is not None
    with files.csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["case_ref", "category", "path", "review_route", "stage", "referred", "decided", "sin_submitted",
         "rr_meeting_held", "cspr_commissioned", "published", "items_on_time", "items_late", "items_open"],
        [NOTIFIED, "serious-harm", "sin-and-rapid-review", "local-cspr", "action-plan", "2026-12-23",
         "2026-12-23", "2026-12-29", "2027-01-11", "2027-01-13", "", "5", "4", "12"],
        [NEAR_MISS, "near-miss", "near-miss-rapid-review", "", "rapid-review", "2027-01-05", "2027-01-05",
         "", "", "", "", "2", "0", "2"],
        [CLOSED, "serious-harm", "no-further-action", "", "closed", "2027-01-07", "2027-01-08", "", "", "",
         "", "1", "0", "0"],
        [AWAITING, "serious-harm", "", "", "awaiting-decision", "2027-01-20", "", "", "", "", "", "0", "0",
         "1"],
    ]


def test_a_period_with_no_cases_still_makes_a_report(figures: ReportFigures, tmp_path: Path) -> None:
    empty = report_figures([], period=Period(date(2025, 4, 1), date(2026, 3, 30)), as_of=AS_OF,
                           calendar=WorkingDayCalendar(), partnership="default", registry=build_registry())
    files = write_report(empty, folder=default_folder(tmp_path, empty), with_csv=True)
    assert files.folder == tmp_path / "reports" / "2025-04-01_2026-03-30"
    assert [png_size(path)[0] for path in files.charts] == [1000, 700]
    assert "Cases counted: 0." in files.markdown.read_text()
    assert "No cases to draw." in files.html.read_text()
    assert files.csv is not None
    assert files.csv.read_text().count("\n") == 1  # the header only

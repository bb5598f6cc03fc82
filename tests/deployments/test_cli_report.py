"""`sbu report` as a user runs it: the installed console script on a data directory holding the cases
of tests/tasks/report_cases.py, with the case clock on the day those cases are looked at from."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from models.clock import FixedClock
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW
from tests.deployments.test_cli import CANARY, SBU, assert_one_line_error
from tests.tasks.report_cases import AS_OF, AWAITING, CLOSED, NEAR_MISS, NOTIFIED, drive_cases
from tests.tasks.reports.test_writer import png_size


def sbu(args: list[str], data_dir: Path, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    env.update({"SBU_DATA_DIR": str(data_dir), "SBU_TIME_EPOCH": datetime.now(UTC).isoformat(),
                "SBU_TIME_START": datetime.combine(AS_OF, time(12, 0), tzinfo=UTC).isoformat()})
    return subprocess.run([SBU, *args], capture_output=True, text=True, env=env, timeout=180, check=False,
                          cwd=cwd)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose SQLite store holds the five cases."""
    root = tmp_path_factory.mktemp("cli-report") / "var"
    settings = Settings(data_dir=root)
    store = Store(settings.sqlalchemy_url).migrate()
    clock = FixedClock(EXAMPLE_NOW)
    drive_cases(CaseService(store=store, settings=settings, clock=clock), clock)
    store.dispose()
    return root


def test_report_writes_its_files_into_the_data_directory_and_says_where(data_dir: Path) -> None:
    result = sbu(["report", "--from", "2026-04-01", "--to", "2027-03-31", "--csv"], data_dir)
    assert result.returncode == 0, result.stderr
    folder = data_dir / "reports" / "2026-04-01_2027-03-31"
    assert result.stdout.splitlines() == [
        f"wrote the report on 4 cases referred from 2026-04-01 to 2027-03-31 into {folder}:",
        f"  {folder / 'report.html'}", f"  {folder / 'report.md'}", f"  {folder / 'cases.csv'}",
        f"  {folder / 'charts'}/ (6 charts)"]
    # Progress on stderr while it works, one line a stage.
    progress = result.stderr.splitlines()
    assert progress[0] == "sbu report: reading the cases"
    assert "sbu report: drawing chart 6 of 6: timeline of SR-2027-0003" in progress
    assert progress[-1] == "sbu report: done: 4 cases counted"
    assert all(line.startswith("sbu report: ") for line in progress)
    for name in ("timeliness", "action-ages", *(f"timeline-{ref}" for ref in (NOTIFIED, NEAR_MISS, CLOSED,
                                                                           AWAITING))):
        assert png_size(folder / "charts" / f"{name}.png")[0] > 0
    assert (folder / "cases.csv").read_text().count("\n") == 5
    assert "Figures as they stood on 2027-01-21." in (folder / "report.md").read_text()


def test_report_json_prints_the_figures(data_dir: Path, tmp_path: Path) -> None:
    result = sbu(["report", "--from", "2027-01-01", "--to", "2027-01-31", "--out", str(tmp_path / "jan"),
                  "--json"], data_dir)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["files"]["folder"] == str(tmp_path / "jan")
    assert body["files"]["csv"] is None
    figures = body["figures"]
    assert (figures["from"], figures["to"], figures["as_of"]) == ("2027-01-01", "2027-01-31", "2027-01-21")
    assert figures["case_refs"] == [NEAR_MISS, CLOSED, AWAITING]
    assert figures["items"] == {"on-time": 3, "late": 0, "open-overdue": 1, "open": 2}
    assert figures["rapid_reviews"] == {"rapid_reviews_started": 1, "cspr_commissioned": 0,
                                        "conversion_rate": 0.0,
                                        "routes": {"local-cspr": 0, "no-cspr": 0, "national-review": 0,
                                                   "not-yet-decided": 1}}
    assert figures["by_stage"]["closed"] == 1
    assert (tmp_path / "jan" / "report.html").is_file()
    assert not (tmp_path / "jan" / "cases.csv").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2027-03-31", "--to", "2026-04-01"], "--to cannot be before --from"),
    (["--from", "2026-04-31", "--to", "2027-03-31"], "--from must be a date as YYYY-MM-DD"),
    (["--from", "2026-04-01", "--to", CANARY], "--to must be a date as YYYY-MM-DD"),
    (["--from", "2026-04-01"], "the following arguments are required: --to"),
])
def test_bad_dates_are_one_line_and_nothing_is_written(tmp_path: Path, args: list[str], message: str) -> None:
    empty = tmp_path / "var"
    result = sbu(["report", *args, "--out", str(tmp_path / "out"), "--csv"], empty, cwd=tmp_path)
    assert_one_line_error(result)
    assert message in result.stderr
    assert CANARY not in result.stderr
    assert result.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no store, no folder, no file

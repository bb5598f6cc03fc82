"""The `sbu` command as a user runs it: the installed console script, in a fresh data directory."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL
from tests.timing import bound, samples

SBU = str(Path(sys.executable).parent / "sbu")
CANARY = "CANARY-7f3a"
TEST_EPOCH = datetime.now(UTC).isoformat()


def run(args: list[str], data_dir: Path, *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    # Case time starts on the afternoon the example is referred, whatever today's date is.
    env.update({"SBU_DATA_DIR": str(data_dir), "SBU_USER": "test-officer",
                "SBU_TIME_EPOCH": TEST_EPOCH, "SBU_TIME_START": EXAMPLE_NOW.isoformat()})
    return subprocess.run([SBU, *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def write_referral(path: Path, **changes: Any) -> Path:
    data = dict(EXAMPLE_REFERRAL, **changes)
    path.write_text(json.dumps(data))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sbu: error: ")
    assert "Traceback" not in result.stderr


def test_timetable_json_for_the_example(tmp_path: Path) -> None:
    result = run(["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22",
                  "--notified", "2026-12-30", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    due = {row["step"]: row["due"] for row in json.loads(result.stdout)["deadlines"]}
    assert due == {
        "dsp-decision": "2026-12-24",
        "sin-submission": "2026-12-31",
        "partners-informed": "2026-12-31",
        # Notified Wed 30 Dec: 31 Dec, 4, 5, 6, 7 Jan (1 Jan is New Year's Day).
        "rr-agency-responses": "2027-01-07",
        "rr-meeting": "2027-01-12",
        "rr-report-to-panel": "2027-01-21",
    }


def test_timetable_answers_for_a_near_miss_and_a_review(tmp_path: Path) -> None:
    near = run(["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--near-miss", "--notified",
                "2026-12-23", "--json"], tmp_path)
    assert near.returncode == 0, near.stderr
    body = json.loads(near.stdout)
    # A near miss: no SIN; 10 working days for the agencies (24, 29..31 Dec, 4..8, 11 Jan) and the
    # meeting on the 15th (12..15, 18 Jan); nothing to the Panel.
    assert body["near_miss"] is True
    assert {row["step"]: row["due"] for row in body["deadlines"]} == {
        "dsp-decision": "2026-12-24", "rr-agency-responses": "2027-01-11", "rr-meeting": "2027-01-18"}

    review = run(["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22",
                  "--commissioned", "2027-08-31", "--planned-publication", "2028-03-06", "--json"], tmp_path)
    assert review.returncode == 0, review.stderr
    due = {row["step"]: row["due"] for row in json.loads(review.stdout)["deadlines"]}
    # Commissioned 31 August: the target clamps to the last day of February (2028 is a leap year).
    assert due["cspr-publication"] == "2028-02-29"
    # The 7th working day strictly before Mon 6 Mar 2028: 3, 2, 1 Mar, 29, 28, 25, 24 Feb.
    assert due["cspr-report-to-panel"] == "2028-02-24"
    assert due["cspr-reviewer-appointed"] == "2027-09-14"  # 10 working days (30 Aug was the bank holiday)


def test_record_derives_each_steps_options_from_its_form(tmp_path: Path) -> None:
    helped = run(["record", "SR-2026-0001", "rr-outcome", "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    for option in ("--immediate-actions", "--learning", "--recommendation", "--rationale", "--dsp-la",
                   "--dsp-health", "--dsp-police", "--deputy", "--on"):
        assert option in helped.stdout, option
    assert "local-cspr" in helped.stdout
    imr = run(["record", "SR-2026-0001", "cspr-imr", "--help"], tmp_path)
    assert "--missing-section" in imr.stdout
    refused = run(["record", "SR-2026-0001", "rr-outcome", "--recommendation", CANARY], tmp_path)
    assert_one_line_error(refused)
    assert CANARY not in refused.stderr


@pytest.mark.parametrize("args", [
    ["--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22", "--notified", "2026-12-21"],
    ["--referred", "2026-12-23T10:15:00", "--aware", "2026-12-22"],
    ["--referred", CANARY, "--aware", "2026-12-22"],
    ["--referred", "2026-12-23T10:15:00+00:00", "--aware", CANARY],
    ["--aware", "2026-12-22"],
])
def test_timetable_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str]) -> None:
    result = run(["timetable", *args], tmp_path)
    assert_one_line_error(result)
    assert CANARY not in result.stderr


def test_refer_status_and_cases(tmp_path: Path) -> None:
    referral = write_referral(tmp_path / "referral.json")
    first = run(["refer", str(referral), "--json"], tmp_path)
    assert first.returncode == 0, first.stderr
    case_ref = json.loads(first.stdout)["case_ref"]
    assert case_ref == "SR-2026-0001"
    again = run(["refer", "-", "--json"], tmp_path, stdin=referral.read_text())
    assert json.loads(again.stdout)["case_ref"] == case_ref

    status = run(["status", case_ref, "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["case_ref"] == case_ref
    assert [(s["step"], s["due"], s["state"]) for s in body["steps"]] == [
        ("dsp-decision", "2026-12-24", "open")]

    listing = json.loads(run(["cases", "--json"], tmp_path).stdout)
    assert [c["case_ref"] for c in listing["cases"]] == [case_ref]
    assert "SR-2026-0001" in run(["cases"], tmp_path).stdout


@pytest.mark.parametrize("changes", [
    {"external_ref": f"{CANARY} bad"},
    {"incident_date": "2026-12-24", "la_aware_date": "2026-12-22"},
    {"referring_agency": CANARY},
    {"children": [{"la_record_id": CANARY, "age_years": 30, "looked_after": False, "care_leaver": True}]},
    {"agencies_involved": ["police", CANARY]},
    {"notes": CANARY},
])
def test_bad_referrals_are_refused_and_nothing_is_written(tmp_path: Path, changes: dict[str, Any]) -> None:
    result = run(["refer", str(write_referral(tmp_path / "r.json", **changes))], tmp_path)
    assert_one_line_error(result)
    assert CANARY not in result.stderr
    assert json.loads(run(["cases", "--json"], tmp_path).stdout) == {"cases": []}


@pytest.mark.parametrize("args", [
    ["refer", "/no/such/file.json"],
    ["status", "SR-2026-0042"],
    ["status"],
    ["decide", "SR-2026-0042", "--sin", "--rapid-review", "--rationale", "x"],
    ["record", "SR-2026-0042", "not-a-step"],
    ["nonsense"],
])
def test_every_command_answers_bad_input_in_one_line(tmp_path: Path, args: list[str]) -> None:
    assert_one_line_error(run(args, tmp_path))


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    assert_one_line_error(run(["refer", "-"], tmp_path, stdin="{not json"))


def test_every_command_has_help(tmp_path: Path) -> None:
    top = run(["--help"], tmp_path)
    assert top.returncode == 0
    commands = [line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert {"timetable", "refer", "status", "cases", "decide", "record", "meeting", "action",
            "serve"} <= set(commands)
    for command in [*commands, "action add", "action note", "action close", "action list"]:
        result = run([*command.split(), "--help"], tmp_path)
        assert result.returncode == 0, command
        assert "Usage:" in result.stdout, command
        assert "Example:" in result.stdout, command


def timed(args: list[str], data_dir: Path) -> float:
    start = time.perf_counter()
    result = run(args, data_dir)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def floor_seconds() -> float:
    """What this machine takes to start Python and import SQLAlchemy, before any of our code: the
    floor under `sbu status`, printed beside the figures so a slow machine shows as one."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sqlalchemy"], check=True)
    return time.perf_counter() - start


TIMETABLE_TARGET = 0.3
STATUS_TARGET = 0.5


@pytest.mark.slow
@pytest.mark.timing
def test_queries_answer_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The query targets: timetable under 0.3 s, status under 0.5 s, median wall
    time of the installed console script. The three are timed in turn, so noise hits them alike."""
    case_ref = json.loads(run(["refer", str(write_referral(tmp_path / "r.json")), "--json"],
                              tmp_path).stdout)["case_ref"]
    timetable_args = ["timetable", "--referred", "2026-12-23T10:15:00+00:00", "--aware", "2026-12-22",
                      "--notified", "2026-12-30", "--json"]
    figures: dict[str, list[float]] = {"timetable": [], "status": [], "floor": []}
    for _ in range(samples(5, 15)):
        figures["timetable"].append(timed(timetable_args, tmp_path))
        figures["status"].append(timed(["status", case_ref, "--json"], tmp_path))
        figures["floor"].append(floor_seconds())
    timetable, status, floor = (statistics.median(values) for values in figures.values())
    with capsys.disabled():  # the figures belong in every CI log, passing or not
        print(f"\nmedian wall time of {len(figures['status'])}: timetable {timetable:.3f} s, "
              f"status {status:.3f} s; `python -c 'import sqlalchemy'` alone {floor:.3f} s")
    assert timetable < bound(TIMETABLE_TARGET)
    assert status < bound(STATUS_TARGET)

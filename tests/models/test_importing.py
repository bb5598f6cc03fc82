"""Reading an import file (`models.importing`): the two formats, the template, and the refusals,
each naming its row and its column, never the value."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from models.importing import (
    CSV_COLUMNS,
    MAX_IMPORT_BYTES,
    REQUIRED_COLUMNS,
    ImportFileError,
    column_reference,
    parse_file,
    template_csv,
)
from models.processes import build_registry
from tests.import_cases import open_case
from tests.test_docs import ROOT

NOW = datetime(2027, 6, 15, 11, 0, tzinfo=UTC)
TODAY = date(2027, 6, 15)
REGISTRY = build_registry()
# A value typed into a cell that must never come back in an error.
MARKER = "Zebedee-Marker-77"


def parse(raw: bytes, name: str = "cases.json") -> Any:
    return parse_file(raw, name=name, now=NOW, registry=REGISTRY)


def as_json(*cases: Any) -> bytes:
    return json.dumps(list(cases)).encode()


def tracker_csv(rows: list[dict[str, str]], *, bom: bool = True, crlf: bool = True) -> bytes:
    """A tracker saved by a spreadsheet from the template: its header, then one row per case."""
    header = next(csv.reader(io.StringIO(template_csv())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


def csv_row(number: int = 1, **cells: str) -> dict[str, str]:
    row = {"referring_agency": "police", "external_ref": f"TRK-{number}", "category": "serious-harm",
           "abuse_or_neglect": "suspected", "incident_date": "2027-05-03", "la_aware_date": "2027-05-04",
           "referred_at": "2027-05-04 10:15", "agencies_involved": "police; health; education",
           "child1_la_record_id": f"LA-{number}", "child1_age_years": "7", "child1_looked_after": "No",
           "child1_care_leaver": "no", "recorded_by": "Tracker Keeper"}
    return row | cells


DECIDED = {"decided_on": "2027-05-05", "decision_sin": "yes", "decision_rapid_review": "yes",
           "decision_rationale": "Criteria met on the facts.", "decision_dsp_la": "Dana Lee",
           "decision_dsp_health": "Sam Patel", "decision_dsp_police": "Alex Morgan",
           "decision_deputies": "police", "decision_by": "Dana Lee"}


def test_the_template_is_every_column_once_in_the_procedures_order() -> None:
    header = template_csv()
    assert header.endswith("\r\n")
    assert header.count("\r\n") == 1
    names = header.strip().split(",")
    assert names == [column.name for column in CSV_COLUMNS]
    assert len(set(names)) == len(names)
    assert set(REQUIRED_COLUMNS) <= set(names)
    assert names.index("decided_on") < names.index("sin_submitted_on") < names.index("meeting_held_on") \
        < names.index("outcome_on") < names.index("imrs_requested_on") < names.index("published_on")


def test_a_tracker_saved_by_a_spreadsheet_reads_as_its_cases() -> None:
    rows = [csv_row(1, **DECIDED, sin_submitted_on="2027-05-06", sin_national_ref="CSIN-1",
                    info_police_on="2027-05-10", action1_added_on="", action1_closed_on=""),
            {}, csv_row(2)]
    parsed = parse(tracker_csv(rows), name="tracker.csv")
    assert parsed.refused == ()
    first, second = parsed.cases
    assert (first.row, second.row) == (2, 4)  # the spreadsheet's rows, its empty row skipped
    assert [entry.name for entry in first.history] == ["dsp-decision", "sin-submission",
                                                       "rr-agency-responses"]
    decision = first.history[0]
    assert decision.by == "Dana Lee"
    assert decision.on == date(2027, 5, 5)
    assert decision.form.dsp_police.deputy
    assert not decision.form.dsp_la.deputy
    # A timestamp without an offset is London time (BST in May).
    assert first.referral.referred_at == datetime(2027, 5, 4, 9, 15, tzinfo=UTC)
    assert first.referral.agencies_involved == ["police", "health", "education"]
    assert second.history == ()


def test_the_same_case_as_csv_and_as_json_is_the_same_case() -> None:
    row = csv_row(1, **DECIDED, sin_submitted_on="2027-05-06", sin_national_ref="CSIN-1")
    from_csv = parse(tracker_csv([row]), name="t.csv").cases[0]
    referral = from_csv.referral.model_dump(mode="json")
    case = {"referral": referral, "recorded_by": "Tracker Keeper", "history": [
        {"step": "sin-submission", "national_ref": "CSIN-1", "completed_on": "2027-05-06"},
        {"step": "dsp-decision", "by": "Dana Lee", "sin": True, "rapid_review": True,
         "rationale": "Criteria met on the facts.", "dsp_la": {"name": "Dana Lee"},
         "dsp_health": {"name": "Sam Patel"}, "dsp_police": {"name": "Alex Morgan", "deputy": True},
         "decided_on": "2027-05-05"}]}
    from_json = parse(as_json(case)).cases[0]
    # Put in date order, whatever order the file gives.
    assert [e.name for e in from_json.history] == ["dsp-decision", "sin-submission"]
    assert from_json.digest == from_csv.digest


def test_actions_are_numbered_as_the_plan_adds_them() -> None:
    done = DECIDED | {"sin_submitted_on": "2027-05-06", "sin_national_ref": "CSIN-1",
                      "meeting_held_on": "2027-05-14",
                      "outcome_on": "2027-05-15", "outcome_recommendation": "no-cspr",
                      "outcome_immediate_actions": "Plan made.", "outcome_learning": "Sharing.",
                      "outcome_rationale": "No new learning.", "outcome_dsp_la": "Dana Lee",
                      "outcome_dsp_health": "Sam Patel", "outcome_dsp_police": "Alex Morgan"}
    actions = {"action1_added_on": "2027-05-20", "action1_source": "rapid-review", "action1_agency": "health",
               "action1_owner_role": "Nurse", "action1_summary": "Do it.", "action1_due": "2027-07-01",
               "action1_closed_on": "2027-06-01", "action1_evidence_ref": "EV-1",
               "action2_added_on": "2027-05-18", "action2_source": "rapid-review", "action2_agency": "police",
               "action2_owner_role": "Inspector", "action2_summary": "Do that.", "action2_due": "2027-07-01"}
    case = parse(tracker_csv([csv_row(1, **done, **actions)]), name="t.csv").cases[0]
    closed = next(entry for entry in case.history if entry.name == "action")
    assert closed.form.action == "a2"  # the second added


@pytest.mark.parametrize(("cells", "column", "reason"), [
    ({"child1_age_years": MARKER}, "child1_age_years", "whole number"),
    ({"child1_looked_after": MARKER}, "child1_looked_after", "yes or no"),
    ({"category": MARKER}, "category", "Input should be"),
    ({"referred_at": "2027-07-01 10:00"}, "referred_at", "in the future"),
    (DECIDED | {"decided_on": "2027-06-16"}, "decided_on", "in the future"),
    (DECIDED | {"decision_dsp_health": ""}, "decision_dsp_health", "Field required"),
    (DECIDED | {"decision_sin": MARKER}, "decision_sin", "yes or no"),
    (DECIDED | {"decision_deputies": MARKER}, "decision_deputies", "la, health or police"),
    ({"sin_national_ref": "CSIN-1"}, "sin_national_ref", "given without sin_submitted_on"),
    ({"imr_police_on": "2027-13-01"}, "imr_police_on", "date"),
    ({"action1_added_on": "2027-05-20"}, "action1_source", "Field required"),
])
def test_a_bad_value_is_refused_naming_its_row_and_column_never_the_value(
        cells: dict[str, str], column: str, reason: str) -> None:
    parsed = parse(tracker_csv([csv_row(1), csv_row(2, **cells)]), name="t.csv")
    assert len(parsed.cases) == 1
    [problem] = parsed.refused
    assert (problem.row, problem.column) == (3, column), problem.line()
    assert reason in problem.reason
    assert MARKER not in problem.line()


def test_a_spreadsheets_empty_trailing_columns_are_no_columns() -> None:
    raw = tracker_csv([csv_row(1), csv_row(2)]).replace(b"\r\n", b",,\r\n")
    parsed = parse(raw, name="t.csv")
    assert (len(parsed.cases), parsed.refused) == (2, ())
    lines = raw.split(b"\r\n")
    lines[1] = lines[1][:-1] + MARKER.encode() + b","
    refused = parse(b"\r\n".join(lines), name="t.csv")
    assert [problem.line() for problem in refused.refused] == [
        f"row 2, column {len(CSV_COLUMNS) + 1}: a value under an empty header"]


def test_a_duplicate_case_is_refused_naming_the_first() -> None:
    parsed = parse(tracker_csv([csv_row(1), csv_row(2), csv_row(1)]), name="t.csv")
    assert [case.row for case in parsed.cases] == [2, 3]
    [problem] = parsed.refused
    assert (problem.row, problem.column) == (4, "external_ref")
    assert "row 2" in problem.reason


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xff\xfe" + "referring_agency".encode("utf-16-le"), "not UTF-8"),
    (template_csv().replace("external_ref,", f"{MARKER},").encode(),
     "column 2 of the header is not a column"),
    (template_csv().replace("external_ref,", "").encode(), "lacks the columns external_ref"),
    (template_csv().replace("decided_on,", "decided_on,decided_on,").encode(), "repeats an earlier column"),
    (b"", "empty"),
    (b"[1, 2", "not valid JSON"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(raw: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message) as refused:
        parse(raw, name="t.json" if raw.startswith(b"[") else "t.csv")
    assert MARKER not in str(refused.value)


def test_a_file_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(ImportFileError, match="larger than"):
        parse(b" " * (MAX_IMPORT_BYTES + 1), name="t.csv")


def test_json_entries_are_checked_by_their_forms() -> None:
    case = open_case(1, today=TODAY, age=20)
    case["history"][0]["dsp_la"] = {"name": MARKER, "title": MARKER}
    case["history"].append({"step": "no-such-step", "completed_on": "2027-06-01"})
    good = open_case(2, today=TODAY, age=20)
    good["history"].append({"act": "action-added", "source": "rapid-review", "agency": "health",
                            "owner_role": "Nurse", "summary": "Do it.", "due": "2027-07-01"})
    parsed = parse(as_json(case, good, {"referral": {}}, [MARKER]))
    assert parsed.cases == ()
    lines = [problem.line() for problem in parsed.refused]
    assert lines[0] == "row 1, column history[0].dsp_la.title: not a field of this form"
    assert lines[1] == (f"row 2, column history[{len(good['history']) - 1}].on: the day it happened is "
                        "needed, as YYYY-MM-DD")
    assert lines[2].startswith("row 3, column referral.")
    assert lines[3] == "row 4, column (case): a case is an object with its referral and its history"
    assert all(MARKER not in line for line in lines)


def test_the_documented_column_list_is_the_templates() -> None:
    text = (ROOT / "docs" / "importing.md").read_text(encoding="utf-8")
    documented = [line.split("|")[1].strip().strip("`") for line in text.splitlines()
                  if line.startswith("| `")]
    assert documented == [name for name, _, _ in column_reference()]
    for name in REQUIRED_COLUMNS:
        assert f"| `{name}` |" in text
        assert "(required) |" in next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))

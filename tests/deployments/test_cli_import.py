"""`sbu import` as an officer runs it: the template written, filled in by hand and saved by a
spreadsheet (with a byte-order mark and CRLF line ends), checked with --dry-run and imported; and
a file refused whole in one line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.import_cases import open_case

SBU = str(Path(sys.executable).parent / "sbu")
NOW = datetime(2027, 6, 15, 11, 0, tzinfo=UTC)


def sbu(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBU_", "PREFECT_"))}
    env.update({"SBU_DATA_DIR": str(data_dir), "SBU_USER": "test-officer",
                "SBU_TIME_EPOCH": datetime.now(UTC).isoformat(), "SBU_TIME_START": NOW.isoformat()})
    return subprocess.run([SBU, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_tracker_made_from_the_template_by_hand_imports_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "var"
    template = tmp_path / "template.csv"
    assert sbu("import", "--template", str(template), data_dir=data).returncode == 0
    header = next(csv.reader(io.StringIO(template.read_text(encoding="utf-8"))))
    # Filled in as an officer would, in a spreadsheet that saves CSV UTF-8 with its byte-order
    # mark and CRLF line ends, and leaves an empty row at the end.
    rows = [
        {"referring_agency": "police", "external_ref": "POL-1001", "category": "serious-harm",
         "abuse_or_neglect": "Suspected", "incident_date": "2027-05-03", "la_aware_date": "2027-05-04",
         "referred_at": "2027-05-04 10:15", "agencies_involved": "police;health;education",
         "child1_la_record_id": "LA-55501", "child1_age_years": "7", "child1_looked_after": "No",
         "child1_care_leaver": "No", "recorded_by": "Sam Officer",
         "decided_on": "2027-05-05", "decision_sin": "Yes", "decision_rapid_review": "Yes",
         "decision_rationale": "Abuse suspected; criteria met.", "decision_dsp_la": "Dana Lee",
         "decision_dsp_health": "Sam Patel", "decision_dsp_police": "Alex Morgan",
         "sin_submitted_on": "2027-05-06", "sin_national_ref": "CSIN-2027-0101",
         "partners_informed_on": "2027-05-06", "info_police_on": "2027-05-10",
         "info_health_on": "2027-05-12"},
        {"referring_agency": "health", "external_ref": "ICB-77", "category": "near-miss",
         "abuse_or_neglect": "suspected", "incident_date": "2027-06-07", "la_aware_date": "2027-06-08",
         "referred_at": "2027-06-14 09:00", "agencies_involved": "health",
         "child1_la_record_id": "LA-55502", "child1_age_years": "2", "child1_looked_after": "no",
         "child1_care_leaver": "no"},
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    writer.writerow([""] * len(header))
    tracker = tmp_path / "tracker.csv"
    tracker.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))

    dry = sbu("import", str(tracker), "--dry-run", data_dir=data)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].startswith("row 2: would import; path sin-and-rapid-review; stage "
                                                 "rapid-review; open: ")
    assert "rr-meeting (late " in dry.stdout  # the meeting was due on 17 May
    assert dry.stdout.splitlines()[-1] == "dry run: would import 2"
    assert json.loads(sbu("cases", "--json", data_dir=data).stdout) == {"cases": []}

    done = sbu("import", str(tracker), data_dir=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "imported 2"
    first = json.loads(sbu("status", "SR-2027-0001", "--json", data_dir=data).stdout)
    steps = {f"{s['step']}:{s['subject']}" if s["subject"] else s["step"]: s for s in first["steps"]}
    assert steps["sin-submission"]["completed_on"] == "2027-05-06"
    assert steps["sin-submission"]["completed_by"] == "Sam Officer"
    assert steps["dsp-decision"]["completed_on"] == "2027-05-05"
    assert steps["rr-agency-responses:health"]["state"] == "done"
    assert steps["rr-agency-responses:education"]["overdue"]
    assert first["anchors"]["notification"] == "2027-05-06"

    again = sbu("import", str(tracker), data_dir=data)
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "unchanged 2"


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    tracker = tmp_path / "tracker.csv"
    tracker.write_bytes("referring_agency,external_ref\r\nBéthune,1\r\n".encode("latin-1"))
    result = sbu("import", str(tracker), data_dir=tmp_path / "var")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sbu: error: the file is not UTF-8 text")
    assert "Béthune" not in result.stderr


def test_json_rows_refused_are_each_named_and_the_rest_imported(tmp_path: Path) -> None:
    good = open_case(1, today=NOW.date(), age=5)
    bad = open_case(2, today=NOW.date(), age=5)
    bad["history"][0]["rationale"] = "short"
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([good, bad]))
    result = sbu("import", str(cases), data_dir=tmp_path / "var")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        result.stdout.splitlines()[0],
        "row 2, column history[0].rationale: String should have at least 10 characters (refused)",
        "imported 1, refused 1"]
    assert result.stdout.startswith("row 1: imported as SR-2027-0001; path sin-and-rapid-review")

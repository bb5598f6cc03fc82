"""`sbu demo` end to end: the three sample cases through `sbu serve` (its own Prefect server, as
`make demo` runs it), a real SMTP sink, and the report it writes, checked for the demo's figures
and charts. It is the demo itself, at its own scale: a faster one would fire the late step's
timers before serve has started."""

from __future__ import annotations

import csv
import email
import email.policy
from pathlib import Path

import pytest

from deployments.demo import STATE_FILE, run_demo
from deployments.local import free_port
from tests.tasks.reports.test_writer import png_size

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# `make demo` measured 1.5 to 2 minutes here; this bounds a machine three times busier.
DEMO_BOUND_SECONDS = 360.0


def subjects(mail_folder: Path) -> list[str]:
    return [str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["subject"])
            for path in sorted(mail_folder.glob("*.eml"))]


def test_the_demo_runs_three_cases_to_the_end_and_reports_them(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    result = run_demo(root=root, port=free_port())
    out = capsys.readouterr().out
    assert result.seconds < DEMO_BOUND_SECONDS
    notified, near_miss, looked_after = (result.cases[name]
                                         for name in ("notified", "near-miss", "looked-after"))

    # Progress as it went, one numbered stage at a time; the dashboard and mail folder printed.
    assert [f"({n}/7)" in out for n in range(1, 8)] == [True] * 7
    assert "dashboard: http://127.0.0.1:" in out
    assert f"mail: {root / 'var' / 'mail'}" in out
    assert "make demo-serve" in out
    assert (root / STATE_FILE).is_file()
    # `sbu serve` said how its start-up went, a line a stage.
    serve_log = (root / "var" / "serve.log").read_text()
    assert "sbu serve: starting the Prefect server on port" in serve_log
    assert "sbu serve: registering" in serve_log
    assert "sbu serve: Prefect dashboard at http://127.0.0.1:" in serve_log

    # The late step's reminder, overdue alert and escalation, on education's part only.
    mail = subjects(root / "var" / "mail")
    alerts = [s for s in mail if any(word in s for word in ("Reminder", "OVERDUE", "ESCALATION"))]
    assert sorted(s.split(":")[0] for s in alerts) == [
        f"[{looked_after}] ESCALATION", f"[{looked_after}] OVERDUE", f"[{looked_after}] Reminder"]
    assert all("(education)" in s for s in alerts)
    assert any(f"[{notified}] Case closed" in s for s in mail)

    figures = result.figures
    # In order of referral (the two referred on 22 February by case reference).
    assert figures["case_refs"] == [notified, looked_after, near_miss]
    assert figures["by_path"]["sin-and-rapid-review"] == 2
    assert figures["by_path"]["near-miss-rapid-review"] == 1
    assert figures["by_stage"]["closed"] == 3
    # 25 items for the notified case (3 case steps, 3 agency responses, 4 more of its Rapid Review,
    # 11 of its CSPR with an IMR from each agency, 2 action plans and 2 actions), 6 for the near
    # miss, 11 for the looked-after child; one of them late.
    assert figures["items"] == {"on-time": 41, "late": 1, "open-overdue": 0, "open": 0}
    late = [row for row in figures["timeliness"] if row["late"]]
    assert [(row["step"], row["on_time"], row["late"], row["median_working_days_late"]) for row in late] == [
        ("rr-agency-responses", 7, 1, 1.0)]
    assert figures["rapid_reviews"] == {
        "rapid_reviews_started": 3, "cspr_commissioned": 1, "conversion_rate": pytest.approx(1 / 3),
        "routes": {"local-cspr": 1, "no-cspr": 2, "national-review": 0, "not-yet-decided": 0}}
    assert figures["open_actions"]["actions"] == []

    folder = result.report_folder
    assert folder == root / "report"
    assert str(folder / "report.html") in out
    timelines = (f"timeline-{ref}" for ref in (notified, near_miss, looked_after))
    for name in ("timeliness", "action-ages", *timelines):
        assert min(png_size(folder / "charts" / f"{name}.png")) > 0, name
    markdown = (folder / "report.md").read_text()
    assert all(ref in markdown for ref in (notified, near_miss, looked_after))
    assert "charts/timeliness.png" in markdown
    with (folder / "cases.csv").open() as rows:
        cases = {row["case_ref"]: row for row in csv.DictReader(rows)}
    assert {ref: (cases[ref]["items_late"], cases[ref]["stage"]) for ref in cases} == {
        notified: ("0", "closed"), near_miss: ("0", "closed"), looked_after: ("1", "closed")}
    assert cases[notified]["published"] == "2027-02-26"

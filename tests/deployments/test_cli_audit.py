"""`sbu audit` and `sbu audit verify` end to end: through the installed console script on a fresh
data directory (SQLite), and through `main` on SQLite and on PostgreSQL. A person's own words in an
event's detail are shown only when asked for; a tampered trail fails the check in one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from deployments.cli import main
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import DSP_OPTIONS
from tests.deployments.test_cli import CANARY, assert_one_line_error, run, write_referral
from tests.tasks.store.test_audit_chain import build_case_history, drop_triggers


def test_the_trail_of_a_case_run_through_the_command(tmp_path: Path) -> None:
    referral = write_referral(tmp_path / "referral.json")
    case_ref = json.loads(run(["refer", str(referral), "--json"], tmp_path).stdout)["case_ref"]
    decided = run(["decide", case_ref, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
                   *DSP_OPTIONS], tmp_path)
    assert decided.returncode == 0, decided.stderr
    reason = f"The officer {CANARY} is away until the fifth"
    retimed = run(["retime", case_ref, "partners-informed", "--to", "2027-01-05", "--reason", reason],
                  tmp_path)
    assert retimed.returncode == 0, retimed.stderr

    table = run(["audit", "--case", case_ref], tmp_path)
    assert table.returncode == 0, table.stderr
    assert "step-retimed" in table.stdout
    assert "test-officer" in table.stdout
    listing = run(["audit", "--json"], tmp_path)
    assert CANARY not in table.stdout + listing.stdout
    events = json.loads(listing.stdout)["events"]
    retime = next(event for event in events if event["action"] == "step-retimed")
    assert retime["detail_keys"] == ["due", "reason", "step", "was"]
    assert (retime["case_ref"], retime["actor"], retime["via"]) == (case_ref, "test-officer", "cli")
    assert "detail" not in retime
    shown = run(["audit", "--detail"], tmp_path)
    assert CANARY in shown.stdout
    assert json.loads(run(["audit", "--json", "--detail"], tmp_path).stdout)["events"][-1]["detail"]

    verified = run(["audit", "verify"], tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"the audit trail is intact: {len(events)} events")

    with sqlite3.connect(tmp_path / "sbu.db") as connection:
        connection.execute("DROP TRIGGER audit_events_no_update")
        connection.execute("UPDATE audit_events SET actor = 'someone else' WHERE id = 3")
    broken = run(["audit", "verify"], tmp_path)
    assert_one_line_error(broken)
    assert "content-changed: row 3 has been changed" in broken.stderr
    as_json = run(["audit", "verify", "--json"], tmp_path)
    assert_one_line_error(as_json)
    result = json.loads(as_json.stdout)
    assert result["intact"] is False
    assert result["first_bad"]["id"] == 3
    assert result["first_bad"]["problem"] == "content-changed"


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in {"SBU_DATA_DIR": str(settings.data_dir), "SBU_DATABASE_URL": settings.sqlalchemy_url,
                        "SBU_USER": "officer.one"}.items():
        monkeypatch.setenv(name, value)
    return settings


def test_verify_on_both_databases(environment: Settings, service: CaseService,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    case_ref = build_case_history(service)
    assert main(["audit", "verify", "--json"]) == 0
    intact = json.loads(capsys.readouterr().out)
    assert intact["intact"] is True
    assert intact["first_bad"] is None
    assert intact["rows_checked"] == intact["head"]["id"]

    assert main(["audit", "--case", case_ref, "--limit", "2", "--json"]) == 0
    newest = json.loads(capsys.readouterr().out)["events"]
    assert [event["id"] for event in newest] == [intact["head"]["id"] - 1, intact["head"]["id"]]

    store = Store(environment.sqlalchemy_url)
    try:
        with store.engine.begin() as connection:
            drop_triggers(connection)
            connection.execute(text("DELETE FROM audit_events WHERE id = 4"))
    finally:
        store.dispose()
    assert main(["audit", "verify"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("sbu: error: the audit trail is not intact: row-missing: row 4 is missing")


@pytest.mark.parametrize(("args", "message"), [
    (["audit", "--case", "SR-2026-0042"], "no case SR-2026-0042 in partnership default"),
    (["audit", "--limit", "0"], "--limit must be between 1 and 10000"),
    (["audit", "verify", "--detail"], "unrecognised arguments"),
])
def test_bad_input_is_refused_in_one_line(environment: Settings, store: Store, args: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert message in error


def test_the_cli_module_imports_nothing_heavy() -> None:
    code = ("import sys, deployments.cli.trail; heavy = [m for m in ('sqlalchemy', 'prefect', 'jinja2') "
            "if m in sys.modules]; print(','.join(heavy))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == ""

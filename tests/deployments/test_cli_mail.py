"""`sbu outbox` and `sbu outbox retry`, on a store in a temporary data directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import update

from deployments.cli import main
from models.enums import Role
from models.processes import StepId
from models.tables import OutboxMessage, OutboxStatus
from tasks.mail import messages
from tasks.mail.directory import load_directory
from tasks.mail.outbox import queue_email
from tasks.store.db import Store
from tests.tasks.mail.conftest import NOW


@dataclass
class Result:
    exit_code: int
    output: str
    error: str


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """`sbu ARGS` in this process, as the console script runs it."""
    code = main(args)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    directory = load_directory(None)
    store = Store(f"sqlite:///{tmp_path}/sbu.db").migrate()
    with store.transaction() as session:
        for due in (date(2026, 3, 6), date(2026, 3, 13), date(2026, 3, 20)):
            queue_email(session, messages.reminder_email(
                case_ref="SR-2026-0001", step=StepId.RR_MEETING, due=due, owner=Role.SBU,
                directory=directory, dashboard_url="http://127.0.0.1:4200"),
                case_id=None, now=NOW, mail_from_domain="partnership.example")
        session.execute(update(OutboxMessage).where(OutboxMessage.id == 1)
                        .values(status=OutboxStatus.DEAD, attempts=12, last_error="attempt 12: 550"))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == 2)
                        .values(status=OutboxStatus.SENT, attempts=1, sent_at=NOW))
    store.dispose()
    variables = {"SBU_DATA_DIR": str(tmp_path), "SBU_DATABASE_URL": "", "SBU_USER": "officer.one"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.mark.usefixtures("environment")
def test_outbox_lists_without_bodies_or_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(["outbox", "--json"], capsys)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["counts"] == {"pending": 1, "sent": 1, "dead": 1}
    assert [m["id"] for m in payload["messages"]] == [3, 2, 1]
    first = payload["messages"][2]
    assert set(first) == {"id", "event", "case_ref", "status", "attempts", "recipients", "subject",
                          "created_at", "sent_at", "next_attempt_at", "last_error"}
    assert (first["status"], first["case_ref"], first["recipients"]) == ("dead", "SR-2026-0001", 1)
    assert "@" not in result.output

    table = invoke(["outbox", "--status", "dead"], capsys)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == "pending 1, sent 1, dead 1"
    assert lines[1].split()[:3] == ["ID", "STATUS", "TRIES"]
    assert len(lines) == 3
    assert lines[2].split()[:2] == ["1", "dead"]


@pytest.mark.usefixtures("environment")
def test_retry_requeues_a_dead_letter(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(["outbox", "retry", "1"], capsys)
    assert result.exit_code == 0, result.error
    assert "outbox message 1 (reminder for SR-2026-0001) requeued" in result.output
    listed = json.loads(invoke(["outbox", "--json"], capsys).output)
    assert listed["counts"] == {"pending": 2, "sent": 1, "dead": 0}


@pytest.mark.parametrize(("outbox_id", "message"), [
    ("2", "outbox message 2 is sent, not a dead letter"),
    ("3", "outbox message 3 is pending, not a dead letter"),
    ("42", "no outbox message 42"),
])
@pytest.mark.usefixtures("environment")
def test_retry_refuses_anything_but_a_dead_letter(capsys: pytest.CaptureFixture[str], outbox_id: str,
                                                  message: str) -> None:
    result = invoke(["outbox", "retry", outbox_id], capsys)
    assert result.exit_code == 2
    assert message in result.error
    assert result.error.count("\n") == 1


@pytest.mark.usefixtures("environment")
def test_a_bad_status_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(["outbox", "--status", "lost"], capsys)
    assert result.exit_code == 2
    assert "--status must be one of pending, sent, dead" in result.error


def test_the_cli_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, deployments.cli.mail; heavy = [m for m in ('aiosmtpd', 'jinja2', 'icalendar', "
            "'smtplib', 'sqlalchemy') if m in sys.modules]; print(','.join(heavy))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == ""

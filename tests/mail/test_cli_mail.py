"""`sbu outbox` and `sbu outbox retry`, on a store in a temporary data directory."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from models.enums import Role, StepId
from models.tables import OutboxMessage, OutboxStatus
from sbu.cli_mail import mail_sink, outbox_app
from sbu.db import Store
from sbu.errors import SbuError
from sbu.mail import messages
from sbu.mail.directory import Directory
from sbu.mail.outbox import queue_email
from tests.mail.conftest import NOW

app = typer.Typer()
app.add_typer(outbox_app, name="outbox")
app.command("mail-sink")(mail_sink)


@pytest.fixture
def environment(tmp_path: Path, directory: Directory) -> dict[str, str]:
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
    return {"SBU_DATA_DIR": str(tmp_path), "SBU_DATABASE_URL": "", "SBU_USER": "officer.one"}


def test_outbox_lists_without_bodies_or_addresses(environment: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["outbox", "--json"], env=environment)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["counts"] == {"pending": 1, "sent": 1, "dead": 1}
    assert [m["id"] for m in payload["messages"]] == [3, 2, 1]
    first = payload["messages"][2]
    assert set(first) == {"id", "event", "case_ref", "status", "attempts", "recipients", "subject",
                          "created_at", "sent_at", "next_attempt_at", "last_error"}
    assert (first["status"], first["case_ref"], first["recipients"]) == ("dead", "SR-2026-0001", 1)
    assert "@" not in result.output

    table = CliRunner().invoke(app, ["outbox", "--status", "dead"], env=environment)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == "pending 1, sent 1, dead 1"
    assert lines[1].split()[:3] == ["ID", "STATUS", "TRIES"]
    assert len(lines) == 3
    assert lines[2].split()[:2] == ["1", "dead"]


def test_retry_requeues_a_dead_letter(environment: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["outbox", "retry", "1"], env=environment)
    assert result.exit_code == 0, result.output
    assert "outbox message 1 (reminder for SR-2026-0001) requeued" in result.output
    listed = json.loads(CliRunner().invoke(app, ["outbox", "--json"], env=environment).output)
    assert listed["counts"] == {"pending": 2, "sent": 1, "dead": 0}


@pytest.mark.parametrize(("outbox_id", "message"), [
    ("2", "outbox message 2 is sent, not a dead letter"),
    ("3", "outbox message 3 is pending, not a dead letter"),
    ("42", "no outbox message 42"),
])
def test_retry_refuses_anything_but_a_dead_letter(environment: dict[str, str], outbox_id: str,
                                                  message: str) -> None:
    result = CliRunner().invoke(app, ["outbox", "retry", outbox_id], env=environment)
    assert isinstance(result.exception, SbuError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


def test_a_bad_status_is_refused(environment: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["outbox", "--status", "lost"], env=environment)
    assert isinstance(result.exception, SbuError)
    assert "--status must be one of pending, sent, dead" in str(result.exception)


def test_the_cli_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, sbu.cli_mail; heavy = [m for m in ('aiosmtpd', 'jinja2', 'icalendar', "
            "'smtplib', 'sqlalchemy') if m in sys.modules]; print(','.join(heavy))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == ""

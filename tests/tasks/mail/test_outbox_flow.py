"""The `deliver-outbox` flow on a real (temporary) Prefect server, against a real SMTP server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from models.clock import ScaledClock
from models.enums import Role
from models.processes import StepId
from tasks.mail import messages
from tasks.mail.directory import Directory
from tasks.mail.outbox import queue_email
from tasks.store.db import Store
from tests.tasks.mail.conftest import SmtpServer

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This process's Prefect pointed at a server of its own, through the launcher `sbu serve`
    uses, and put back afterwards. (Prefect's own test harness waits on its log and event
    workers without a limit as it stops: over two minutes in a loaded run.)"""
    from deployments.local import free_port
    from deployments.serve import local_prefect_server
    from models.settings import Settings
    from tasks.prefect.hooks import refresh_settings

    saved = os.environ.get("PREFECT_API_URL")
    with local_prefect_server(Settings(data_dir=tmp_path_factory.mktemp("prefect")), port=free_port()) as url:
        os.environ["PREFECT_API_URL"] = url
        refresh_settings()
        try:
            yield
        finally:
            # What the flow logged and emitted goes while the server is there to take it: left
            # for the process's exit, the log worker tried a stopped server for over a minute.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10, at_exit=False)
            EventsWorker.drain_all(timeout=10, at_exit=False)
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved
            refresh_settings()


def test_the_flow_delivers_the_outbox_and_reports_counts(
        prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory: Directory,
        smtp_server: SmtpServer) -> None:
    from flows.outbox_delivery import deliver_outbox

    monkeypatch.setenv("SBU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SBU_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("SBU_MAIL_FROM", "sbu-pipeline@partnership.example")
    store = Store(f"sqlite:///{tmp_path}/sbu.db").migrate()
    with store.transaction() as session:
        queue_email(session, messages.reminder_email(
            case_ref="SR-2026-0001", step=StepId.SIN_SUBMISSION, due=date(2026, 3, 6),
            owner=Role.LOCAL_AUTHORITY, directory=directory, dashboard_url="http://127.0.0.1:4200"),
            case_id=None, now=ScaledClock().now(), mail_from_domain="partnership.example")
    store.dispose()

    report = deliver_outbox()

    assert (report.sent, report.dead, report.retrying) == (1, 0, 0)
    [received] = smtp_server.sinks[0].messages
    assert received.subject.startswith("[SR-2026-0001] Reminder")
    assert deliver_outbox().claimed == 0

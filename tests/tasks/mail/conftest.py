"""Fixtures for the mail tests: a real SMTP server (the sink) on a free loopback port, a case store
on SQLite and on PostgreSQL (each PostgreSQL test in a schema of its own), and the directory."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.clock import FixedClock
from tasks.mail.directory import Directory, load_directory
from tasks.mail.sender import SmtpConfig, SmtpSender
from tasks.mail.sink import MailSink, SinkEnvelope
from tasks.store.db import Store

MAIL_FROM = "sbu-pipeline@partnership.example"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def free_port() -> int:
    """A port nobody listens on right now: aiosmtpd cannot be given port 0 itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Script:
    """Replies for the sink to give to DATA, one per message, before it starts accepting."""

    replies: list[str] = field(default_factory=list)
    only_for: Callable[[SinkEnvelope], bool] = lambda _envelope: True
    delay_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, envelope: SinkEnvelope) -> str | None:
        if self.delay_seconds:
            threading.Event().wait(self.delay_seconds)
        if not self.only_for(envelope):
            return None
        with self._lock:
            return self.replies.pop(0) if self.replies else None


@dataclass
class SmtpServer:
    """The sink under test, restartable on the same port."""

    directory: Path
    port: int
    script: Script
    sinks: list[MailSink] = field(default_factory=list)

    def start(self) -> MailSink:
        sink = MailSink(self.directory, port=self.port, fault=self.script).start()
        self.sinks.append(sink)
        return sink

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()

    def message_ids(self) -> list[str]:
        return [mid for sink in self.sinks for mid in sink.message_ids()]

    def messages(self) -> list[bytes]:
        return [message.content for sink in self.sinks for message in sink.messages]


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(directory=tmp_path / "mail", port=free_port(), script=Script())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_config(smtp_server: SmtpServer) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=smtp_server.port, mail_from=MAIL_FROM, timeout_seconds=5)


@pytest.fixture
def sender(smtp_config: SmtpConfig) -> SmtpSender:
    return SmtpSender(smtp_config)


@pytest.fixture(scope="session")
def directory() -> Directory:
    return load_directory(None)


@pytest.fixture
def fixed_clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def mail_db_url(database_url: str) -> str:
    """The URL of an empty case store: SQLite in tmp_path, or a fresh PostgreSQL schema (the
    shared `database_url` fixture of tests/conftest.py)."""
    return database_url


@pytest.fixture
def mail_store(mail_db_url: str) -> Iterator[Store]:
    store = Store(mail_db_url).migrate()
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/sbu.db").migrate()
    try:
        yield store
    finally:
        store.dispose()


# Short waits for tests: a retry is due as soon as the clock moves on.
FAST = {"base_delay": timedelta(seconds=1), "max_delay": timedelta(seconds=4),
        "lease": timedelta(seconds=60)}

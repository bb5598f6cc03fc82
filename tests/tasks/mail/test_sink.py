"""The mail sink: a real SMTP server on loopback storing .eml files; and `sbu mail-sink`."""

from __future__ import annotations

import os
import select
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from models.errors import SbuError
from tasks.mail.sink import MailSink, ReceivedMessage, is_loopback
from tests.tasks.mail.conftest import free_port


def _message(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = message_id
    message["From"] = "sbu@partnership.example"
    message["To"] = "dsp@council.example"
    message["Subject"] = "[SR-2026-0001] Reminder"
    message.set_content("hello")
    return message


def test_each_message_becomes_an_eml_file_and_a_line(tmp_path: Path) -> None:
    seen: list[ReceivedMessage] = []
    port = free_port()
    with MailSink(tmp_path / "mail", port=port, on_message=seen.append) as sink, \
            smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(_message("<one@partnership.example>"))
        client.send_message(_message("<two@partnership.example>"))
    assert sink.message_ids() == ["<one@partnership.example>", "<two@partnership.example>"]
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    assert not list((tmp_path / "mail").glob("*.part"))
    assert b"Message-ID: <one@partnership.example>" in files[0].read_bytes()
    line = seen[0].summary()
    assert "<one@partnership.example>" in line
    assert "to=dsp@council.example" in line
    assert "subject=[SR-2026-0001] Reminder" in line


def test_the_sink_only_listens_on_loopback(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("mail.example")
    with pytest.raises(SbuError, match="loopback"):
        MailSink(tmp_path, host="0.0.0.0")


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with MailSink(tmp_path / "a", port=port), pytest.raises(SbuError, match="cannot listen"):
        MailSink(tmp_path / "b", port=port).start()


def test_sbu_mail_sink_prints_one_line_per_message(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "SBU_DATA_DIR": str(tmp_path)}
    code = "import sys; from deployments.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, "mail-sink", "--port", str(port)],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        assert process.stdout is not None
        banner = process.stderr.readline()
        assert f"listening on 127.0.0.1:{port}" in banner
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.send_message(_message("<cli@partnership.example>"))
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready
        line = process.stdout.readline()
        assert "<cli@partnership.example>" in line
        assert "subject=[SR-2026-0001] Reminder" in line
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0
    time.sleep(0)

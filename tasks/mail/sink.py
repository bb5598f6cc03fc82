"""A local mail sink for the demo and for development: a real SMTP server (aiosmtpd) on loopback
that stores every message it accepts as an `.eml` file and reports it to a callback.

It only listens on a loopback address: it has no authentication and accepts mail for anyone, so
it must never face a network. Use `MailSink` from Python (it runs in its own thread) or
`sbu mail-sink` from a shell.

`fault` lets a demo or a test make the sink refuse messages for a while, with any SMTP reply
(`"450 4.3.2 try later"`, `"550 5.1.1 no such user"`); refused messages are not stored.
`refuse_recipient` does the same for single recipients (the reply to RCPT TO).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from models.clock import utc_now
from models.errors import SbuError

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

_KEEP_IN_MEMORY = 1000


@dataclass(frozen=True, slots=True)
class SinkEnvelope:
    """What a `fault` hook is shown of a message before the sink decides to accept it."""

    mail_from: str
    recipients: tuple[str, ...]
    message_id: str
    subject: str


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message the sink accepted."""

    received_at: datetime
    message_id: str
    mail_from: str
    recipients: tuple[str, ...]
    subject: str
    path: Path
    content: bytes

    def summary(self) -> str:
        """One line: time, Message-ID, recipients, subject."""
        return (f"{self.received_at:%Y-%m-%d %H:%M:%S}Z {self.message_id} "
                f"to={','.join(self.recipients)} subject={self.subject}")


def is_loopback(host: str) -> bool:
    """True for `localhost` and any loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler:
    """The aiosmtpd handler: store, remember, report."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if self._sink.refuse_recipient is not None:
            reply = self._sink.refuse_recipient(address)
            if reply is not None:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        mail_from = str(envelope.mail_from or "")
        recipients = tuple(str(r) for r in envelope.rcpt_tos)
        if self._sink.fault is not None:
            message_id, subject = _headline(data)
            reply = self._sink.fault(SinkEnvelope(mail_from=mail_from, recipients=recipients,
                                                  message_id=message_id, subject=subject))
            if reply is not None:
                return reply
        self._sink._store(data, mail_from=mail_from, recipients=recipients)
        return "250 2.0.0 Message accepted for delivery"


def _headline(data: bytes) -> tuple[str, str]:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(data)
    message_id = " ".join(str(headers.get("Message-ID", "")).split()) or "<no-message-id>"
    return message_id, " ".join(str(headers.get("Subject", "")).split())


class MailSink:
    """An SMTP server on loopback that writes each accepted message to `directory` as `.eml`.

    Use as a context manager, or call `start()` and `stop()`. `messages` holds the most recent
    messages (the files hold them all). `on_message` is called, in the server's thread, for each
    message stored.
    """

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 8025,
                 on_message: Callable[[ReceivedMessage], None] | None = None,
                 fault: Callable[[SinkEnvelope], str | None] | None = None,
                 refuse_recipient: Callable[[str], str | None] | None = None) -> None:
        if not is_loopback(host):
            raise SbuError("the mail sink only listens on a loopback address (e.g. 127.0.0.1)")
        self.directory = directory
        self.host = host
        self.port = port
        self.on_message = on_message
        self.fault = fault
        self.refuse_recipient = refuse_recipient
        self._lock = threading.Lock()
        self._messages: deque[ReceivedMessage] = deque(maxlen=_KEEP_IN_MEMORY)
        self._counter = 0
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def message_ids(self) -> list[str]:
        """The Message-ID of every message held, in the order received."""
        return [message.message_id for message in self.messages]

    def start(self) -> MailSink:
        """Start listening (in a background thread); returns once the server answers."""
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        # aiosmtpd binds in its own thread and reports a busy port only by timing out (10 s): a
        # quick bind here turns that into an immediate, clear error.
        self._check_port_free()
        controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                ready_timeout=10.0)
        try:
            controller.start()
        except (OSError, RuntimeError) as error:
            raise SbuError(f"the mail sink cannot listen on {self.host}:{self.port}: "
                           f"{type(error).__name__}") from None
        self._controller = controller
        log.info("mail sink listening on %s:%d, storing into %s", self.host, self.port, self.directory)
        return self

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # The same option asyncio sets, so a port in TIME_WAIT after a restart is not "busy".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as error:
                raise SbuError(f"the mail sink cannot listen on {self.host}:{self.port}: "
                               f"{error.strerror or type(error).__name__}") from None

    def stop(self) -> None:
        """Stop listening; stored messages stay in `messages` and on disk."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _store(self, data: bytes, *, mail_from: str, recipients: tuple[str, ...]) -> ReceivedMessage:
        message_id, subject = _headline(data)
        received_at = utc_now()
        with self._lock:
            self._counter += 1
            sequence = self._counter
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:12]
        path = self.directory / f"{received_at:%Y%m%dT%H%M%S%fZ}-{sequence:05d}-{digest}.eml"
        # Written under a temporary name and renamed, so a reader never sees half a message.
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(data)
        os.replace(partial, path)
        record = ReceivedMessage(received_at=received_at, message_id=message_id, mail_from=mail_from,
                                 recipients=recipients, subject=subject, path=path, content=data)
        with self._lock:
            self._messages.append(record)
        if self.on_message is not None:
            self.on_message(record)
        return record

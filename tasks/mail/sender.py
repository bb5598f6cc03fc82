"""The one sender: an `OutgoingEmail` becomes a standard `email.message.EmailMessage` and goes out
through `smtplib`, with STARTTLS, implicit TLS or plain SMTP (for a loopback sink), an optional
login and a timeout.

Failures are sorted for the outbox into two kinds:
- `TransientDeliveryError`: try again later. SMTP 4xx replies (421, 450, 451, 452), timeouts,
  refused or dropped connections, and problems before the envelope starts (TLS, login), which are
  about the server or our settings, never about one message.
- `PermanentDeliveryError`: this message will never be accepted as it is: SMTP 5xx replies to the
  envelope or the data (550, 553, 554).

`connection_level` marks failures that would hit every message alike (the server is down, login is
refused), so the delivery loop stops its batch instead of timing out once per queued message.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from models.errors import SbuError
from tasks.mail.directory import is_valid_address
from tasks.mail.rendering import Attachment

if TYPE_CHECKING:
    from models.settings import Settings

log = logging.getLogger(__name__)

_ERROR_TEXT_LIMIT = 240


class Security(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach the mail server. Build it with `SmtpConfig.from_settings` at the edge."""

    host: str
    port: int
    mail_from: str
    security: Security = Security.NONE
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0
    # None means the system's trust store; a test or a private CA may pass its own context.
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_address(self.mail_from):
            raise SbuError("settings: mail_from is not a plain email address (local@domain)")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The SMTP settings (`SBU_SMTP_*`, `SBU_MAIL_FROM`) as a config for `send_email`."""
        return cls(host=settings.smtp_host, port=settings.smtp_port, mail_from=settings.mail_from,
                   security=Security(settings.smtp_security), user=settings.smtp_user,
                   password=smtp_password(settings), timeout_seconds=settings.smtp_timeout_seconds)

    @property
    def domain(self) -> str:
        """The domain of the From address, used on the right of every Message-ID."""
        return self.mail_from.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One queued email as the sender needs it. `date` is when it was queued, so every attempt
    at the same message produces the same headers."""

    message_id: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    date: datetime

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.to, *self.cc)))


@dataclass(frozen=True, slots=True)
class SendResult:
    """The server accepted the message. `refused` lists recipients it turned away while
    accepting others, as 'address: code' strings."""

    refused: tuple[str, ...] = ()


class DeliveryError(Exception):
    """A failed attempt. `summary` is short, one line and safe to store and log."""

    permanent: bool = False

    def __init__(self, summary: str, *, code: int | None = None, connection_level: bool = False) -> None:
        super().__init__(summary)
        self.summary = " ".join(summary.split())[:_ERROR_TEXT_LIMIT]
        self.code = code
        self.connection_level = connection_level


class TransientDeliveryError(DeliveryError):
    permanent = False


class PermanentDeliveryError(DeliveryError):
    permanent = True


class Sender(Protocol):
    """Anything that can hand an `OutgoingEmail` to a mail server."""

    def send(self, outgoing: OutgoingEmail) -> SendResult:
        """Send once. Raise `TransientDeliveryError` or `PermanentDeliveryError` on failure."""
        ...


class SmtpSender:
    """The production `Sender`: `send_email` with a fixed config."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def send(self, outgoing: OutgoingEmail) -> SendResult:
        return send_email(outgoing, config=self.config)


def build_email_message(outgoing: OutgoingEmail, *, mail_from: str) -> EmailMessage:
    """The MIME message: plain text with an HTML alternative, then any attachments.

    The SMTP policy refuses CR or LF in any header value, a second guard (after the validation of
    addresses and subjects) against header injection.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["Message-ID"] = outgoing.message_id
    message["Date"] = email.utils.format_datetime(outgoing.date)
    message["From"] = mail_from
    message["To"] = ", ".join(outgoing.to)
    if outgoing.cc:
        message["Cc"] = ", ".join(outgoing.cc)
    message["Subject"] = outgoing.subject
    # Tells auto-responders (out-of-office) not to reply to the pipeline.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(outgoing.text)
    if outgoing.html is not None:
        message.add_alternative(outgoing.html, subtype="html")
    for attachment in outgoing.attachments:
        message.add_attachment(attachment.data, maintype=attachment.maintype,
                               subtype=attachment.subtype, filename=attachment.filename,
                               params=dict(attachment.params))
    # MIME boundaries are random by default; derived from the Message-ID instead, every attempt at
    # the same message sends the same bytes, so a duplicate is recognisable by content as well.
    digest = hashlib.sha256(outgoing.message_id.encode()).hexdigest()[:24]
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"==sbu-{digest}-{index}==")
    return message


def send_email(outgoing: OutgoingEmail, *, config: SmtpConfig) -> SendResult:
    """Send one email over a fresh SMTP connection and classify any failure.

    Returns once the server has accepted the message (the reply to DATA); anything that goes
    wrong after that, such as an unhappy QUIT, is ignored because the message is already on its way.
    """
    message = build_email_message(outgoing, mail_from=config.mail_from)
    smtp = _connect(config)
    try:
        _prepare(smtp, config)
        try:
            refused = smtp.send_message(message, from_addr=config.mail_from,
                                        to_addrs=list(outgoing.recipients))
        except smtplib.SMTPRecipientsRefused as error:
            raise _recipients_refused(error.recipients) from None
        except smtplib.SMTPResponseException as error:
            # SMTPSenderRefused and SMTPDataError land here, with the server's code.
            raise _from_reply(error.smtp_code, error.smtp_error, stage="send") from None
        except smtplib.SMTPServerDisconnected as error:
            raise TransientDeliveryError(f"disconnected during send: {error}",
                                         connection_level=True) from None
        except (TimeoutError, OSError) as error:
            raise TransientDeliveryError(f"network error during send: {type(error).__name__}",
                                         connection_level=True) from None
    finally:
        _close(smtp)
    return SendResult(refused=tuple(f"{address}: {code}" for address, (code, _text)
                                    in sorted(refused.items())))


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    try:
        if config.security is Security.TLS:
            return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_seconds,
                                    context=config.tls_context or ssl.create_default_context())
        return smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
    except smtplib.SMTPConnectError as error:
        # A greeting other than 220 (421 "too busy", 554 "no service") is about the server, not
        # the message: retry later whatever the code.
        raise TransientDeliveryError(f"server greeting {error.smtp_code}: {_text(error.smtp_error)}",
                                     code=error.smtp_code, connection_level=True) from None
    except smtplib.SMTPServerDisconnected as error:
        raise TransientDeliveryError(f"disconnected on connect: {error}", connection_level=True) from None
    except (TimeoutError, OSError) as error:
        # ConnectionRefusedError, socket.timeout, DNS failure, ssl.SSLError: all OSError.
        raise TransientDeliveryError(f"cannot connect to the mail server: {type(error).__name__}",
                                     connection_level=True) from None


def _prepare(smtp: smtplib.SMTP, config: SmtpConfig) -> None:
    try:
        smtp.ehlo()
        if config.security is Security.STARTTLS:
            smtp.starttls(context=config.tls_context or ssl.create_default_context())
            smtp.ehlo()
        if config.user:
            smtp.login(config.user, config.password or "")
    except smtplib.SMTPAuthenticationError as error:
        # A refused login is a settings problem: keep the mail queued until someone fixes it.
        raise TransientDeliveryError(f"login refused ({error.smtp_code})", code=error.smtp_code,
                                     connection_level=True) from None
    except smtplib.SMTPResponseException as error:
        raise TransientDeliveryError(f"session setup refused {error.smtp_code}: "
                                     f"{_text(error.smtp_error)}", code=error.smtp_code,
                                     connection_level=True) from None
    except (smtplib.SMTPException, TimeoutError, OSError) as error:
        raise TransientDeliveryError(f"session setup failed: {type(error).__name__}",
                                     connection_level=True) from None


def _close(smtp: smtplib.SMTP) -> None:
    # Not `with smtp:`: its QUIT raises on a non-221 reply, which would turn a delivered message
    # into a reported failure and so a needless duplicate.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _from_reply(code: int, text: bytes | str, *, stage: str) -> DeliveryError:
    summary = f"{stage} refused {code}: {_text(text)}"
    if 400 <= code < 500:
        # 421 means the server is closing the session: every further message would meet it too.
        return TransientDeliveryError(summary, code=code, connection_level=code == 421)
    if code >= 500:
        return PermanentDeliveryError(summary, code=code)
    # smtplib uses -1 for a reply it could not parse: treat as a glitch and retry.
    return TransientDeliveryError(summary, code=code)


def _recipients_refused(recipients: Mapping[str, tuple[int, bytes]]) -> DeliveryError:
    codes = sorted({code for code, _text in recipients.values()})
    summary = f"every recipient refused ({', '.join(str(code) for code in codes)})"
    # If any refusal was temporary, a later attempt may reach everyone: retry the whole message.
    if any(400 <= code < 500 for code in codes):
        return TransientDeliveryError(summary, code=codes[0])
    return PermanentDeliveryError(summary, code=codes[-1])


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())[:_ERROR_TEXT_LIMIT]


def smtp_password(settings: Settings) -> str | None:
    """The SMTP password: from the environment (`SBU_SMTP_PASSWORD`), or read from the Prefect
    Secret block `SBU_SMTP_PASSWORD_BLOCK` names, so it need not be in any process's environment."""
    if settings.smtp_password_block is not None:
        from prefect.blocks.system import Secret

        block: Secret[str] = Secret.load(settings.smtp_password_block, _sync=True)  # type: ignore[call-arg,assignment]
        value = block.get()
        return str(value)
    return settings.smtp_password.get_secret_value() if settings.smtp_password is not None else None

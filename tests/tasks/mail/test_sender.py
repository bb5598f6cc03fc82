"""The sender: the MIME message it builds, and how SMTP failures are sorted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from models.enums import Agency
from models.errors import SbuError
from models.settings import Settings
from tasks.mail import messages
from tasks.mail.checked import MeetingPlace
from tasks.mail.directory import Directory
from tasks.mail.sender import (
    OutgoingEmail,
    PermanentDeliveryError,
    Security,
    SmtpConfig,
    TransientDeliveryError,
    build_email_message,
    send_email,
)
from tests.tasks.mail.conftest import MAIL_FROM, SmtpServer, free_port

QUEUED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _outgoing(directory: Directory) -> OutgoingEmail:
    draft = messages.rr_meeting_invitation_email(
        case_ref="SR-2026-0001", starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
        duration=timedelta(hours=1), place=MeetingPlace("Committee Room 2"), agencies=[Agency.POLICE],
        directory=directory, dashboard_url="http://127.0.0.1:4200",
        issued_at=datetime(2026, 3, 3, 9, tzinfo=UTC), sequence=0)
    return OutgoingEmail(message_id="<abc.sbu@partnership.example>", to=draft.to, cc=draft.cc,
                         subject=draft.subject, text=draft.text, html=draft.html,
                         attachments=draft.attachments, date=QUEUED_AT)


def test_the_message_has_fixed_headers_text_html_and_the_invitation(directory: Directory) -> None:
    outgoing = _outgoing(directory)
    message = build_email_message(outgoing, mail_from=MAIL_FROM)
    assert message["Message-ID"] == outgoing.message_id
    assert message["From"] == MAIL_FROM
    assert message["Date"] == "Mon, 02 Mar 2026 09:00:00 +0000"
    assert message["Subject"] == outgoing.subject
    assert message.get_content_type() == "multipart/mixed"
    alternative, invite = message.iter_parts()
    assert [part.get_content_type() for part in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_param("method") == "request"
    assert invite.get_filename() == "invite.ics"
    # Built twice, the same bytes: the boundaries come from the Message-ID.
    assert message.as_bytes() == build_email_message(outgoing, mail_from=MAIL_FROM).as_bytes()


def test_sent_through_a_real_server(directory: Directory, smtp_server: SmtpServer,
                                    smtp_config: SmtpConfig) -> None:
    outgoing = _outgoing(directory)
    result = send_email(outgoing, config=smtp_config)
    assert result.refused == ()
    [received] = smtp_server.sinks[0].messages
    assert set(received.recipients) == set(outgoing.recipients)
    parsed = message_from_bytes(received.content, policy=default_policy)
    assert parsed["Message-ID"] == outgoing.message_id
    assert received.path.read_bytes() == received.content


@pytest.mark.parametrize(("reply", "kind", "connection_level"), [
    ("421 4.3.0 Closing", TransientDeliveryError, True),
    ("450 4.2.0 Busy", TransientDeliveryError, False),
    ("452 4.3.1 Out of storage", TransientDeliveryError, False),
    ("550 5.1.1 Unknown", PermanentDeliveryError, False),
    ("554 5.7.1 Rejected", PermanentDeliveryError, False),
])
def test_server_replies_are_sorted(directory: Directory, smtp_server: SmtpServer, smtp_config: SmtpConfig,
                                   reply: str, kind: type[Exception], connection_level: bool) -> None:
    smtp_server.script.replies.append(reply)
    with pytest.raises(kind) as caught:
        send_email(_outgoing(directory), config=smtp_config)
    assert isinstance(caught.value, TransientDeliveryError | PermanentDeliveryError)
    assert caught.value.code == int(reply[:3])
    assert caught.value.connection_level is connection_level


def test_every_recipient_refused(directory: Directory, smtp_server: SmtpServer,
                                 smtp_config: SmtpConfig) -> None:
    smtp_server.sinks[0].refuse_recipient = lambda _address: "550 5.1.1 No such user"
    with pytest.raises(PermanentDeliveryError, match="every recipient refused"):
        send_email(_outgoing(directory), config=smtp_config)
    smtp_server.sinks[0].refuse_recipient = lambda _address: "450 4.2.1 Try later"
    with pytest.raises(TransientDeliveryError, match="every recipient refused"):
        send_email(_outgoing(directory), config=smtp_config)


def test_no_server_is_a_transient_connection_failure(directory: Directory) -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), mail_from=MAIL_FROM, timeout_seconds=2)
    with pytest.raises(TransientDeliveryError, match="cannot connect") as caught:
        send_email(_outgoing(directory), config=config)
    assert caught.value.connection_level


def test_starttls_to_a_server_without_it_is_transient(directory: Directory, smtp_server: SmtpServer,
                                                      smtp_config: SmtpConfig) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_server.port, mail_from=MAIL_FROM,
                        security=Security.STARTTLS, timeout_seconds=2)
    with pytest.raises(TransientDeliveryError, match="session setup") as caught:
        send_email(_outgoing(directory), config=config)
    assert caught.value.connection_level
    assert smtp_server.message_ids() == []


def test_config_from_settings_and_a_bad_from_address(tmp_path: object) -> None:
    settings = Settings(smtp_host="mail.example", smtp_port=587, smtp_security="starttls",
                        smtp_user="sbu", smtp_password="secret-password", mail_from="sbu@partnership.example")
    config = SmtpConfig.from_settings(settings)
    assert (config.host, config.port, config.security, config.domain) == (
        "mail.example", 587, Security.STARTTLS, "partnership.example")
    assert "secret-password" not in repr(config)
    with pytest.raises(SbuError, match="mail_from"):
        SmtpConfig(host="h", port=25, mail_from="sbu@x.example\r\nBcc: spy@evil.example")


def test_a_line_break_in_a_header_is_refused_by_the_policy(directory: Directory) -> None:
    outgoing = _outgoing(directory)
    bad = OutgoingEmail(message_id=outgoing.message_id, to=outgoing.to, cc=(),
                        subject="x\r\nBcc: y@z.example", text="t", html=None, attachments=(),
                        date=QUEUED_AT)
    with pytest.raises(ValueError, match=r"linefeed|carriage return"):
        build_email_message(bad, mail_from=MAIL_FROM)

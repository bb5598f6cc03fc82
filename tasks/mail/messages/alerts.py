"""The alerts to the fallback address about a message the mail server would not take: they carry
the server's reply, never a case's details."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.mail.checked import one_line
from tasks.mail.rendering import EmailDraft, draft


def dead_letter_alert_email(*, outbox_id: int, message_id: str, event: str, case_ref: str | None,
                            attempts: int, error: str, fallback_address: str, generation: int = 0,
                            dashboard_url: str | None = None) -> EmailDraft:
    """To the fallback address: a message could not be delivered and is now a dead letter.

    `error` is the SMTP server's reply or the transport error, already cut short by the caller; it
    names codes and hosts, not people. One alert per dead letter and `generation` (how many times
    the message has been requeued by hand), so a requeued message that dies again alerts again.
    """
    return draft(
        "dead-letter-alert", f"dead-letter:{message_id}:{generation}", case_ref=case_ref,
        to=(fallback_address,), cc=(),
        context={"outbox_id": outbox_id, "message_id": message_id, "event": event,
                 "attempts": attempts, "error": one_line(error),
                 "dashboard_url": dashboard_url},
    )


def refused_recipients_alert_email(*, outbox_id: int, message_id: str, event: str,
                                   case_ref: str | None, refused: Sequence[str], fallback_address: str,
                                   dashboard_url: str | None = None) -> EmailDraft:
    """To the fallback address: the server accepted a message for some recipients but refused
    others, so those people were not told."""
    return draft(
        "recipients-refused-alert", f"recipients-refused:{message_id}", case_ref=case_ref,
        to=(fallback_address,), cc=(),
        context={"outbox_id": outbox_id, "message_id": message_id, "event": event,
                 "refused": [one_line(item) for item in refused],
                 "dashboard_url": dashboard_url},
    )

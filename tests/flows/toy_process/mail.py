"""The toy process's own email: its visits booked, to the SBU, by reference only. The typed request
(what the email says: dates and a count), its builder (who it goes to, its key, the templates'
values) and its templates (`templates/`) all live in the toy's package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from models.effects import MailRequest
from models.enums import Role
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True, slots=True)
class ToyVisitsBookedMail(MailRequest):
    """The toy check was made on `booked_on`, booking `visits` agency visits due by `visits_due`."""

    booked_on: date
    visits_due: date
    visits: int


@builds(ToyVisitsBookedMail)
def visits_booked_email(mail: ToyVisitsBookedMail, about: MailContext) -> EmailDraft:
    """To the SBU: the case's toy visits are booked, and by when they are due. One per case."""
    return draft(
        "toy-visits-booked", f"toy-visits-booked:{about.case_ref}", case_ref=about.case_ref,
        to=(about.directory.address(Role.SBU),), cc=(),
        context={"booked_text": day_text(mail.booked_on), "due_text": day_text(mail.visits_due),
                 "due": mail.visits_due.isoformat(), "visits": mail.visits,
                 "dashboard_url": about.dashboard_url},
        templates=TEMPLATES,
    )

"""An email as it is queued (`EmailDraft`), and how a builder makes one from template files.

Templates live in `tasks/mail/templates/`, one `.txt` and one `.html` per event; a process's own
email keeps its templates in its own package and names that folder (`draft(..., templates=...)`),
whose templates may include or extend the shared ones (`_footer.txt`, `_layout.html`). The text
template sets the subject with `{% set subject = ... %}`; the rendered text is the plain-text body.

Each draft carries a deduplication key built from stable ids and ISO dates, e.g.
`reminder:SR-2025-0001:sin-submission:2025-03-04`; the outbox refuses a second draft with the same
key, so the same reminder for the same step and due date is queued once however often it is built.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from models.calendar import LONDON
from tasks.mail.checked import (
    DEDUP_KEY,
    EVENT,
    FILENAME,
    MIME_TOKEN,
    CaseRef,
    SingleLine,
    check_case_ref,
    check_url,
    matching,
    require_aware,
)
from tasks.mail.directory import Address

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).with_name("templates")


class Attachment(BaseModel):
    """A file attached to an email, e.g. the Rapid Review meeting's `invite.ics`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: Annotated[str, matching(FILENAME, "attachment filename")]
    maintype: Annotated[str, matching(MIME_TOKEN, "MIME type")]
    subtype: Annotated[str, matching(MIME_TOKEN, "MIME subtype")]
    # Content-Type parameters such as `method=REQUEST` for a calendar invitation.
    params: tuple[tuple[Annotated[str, matching(MIME_TOKEN, "parameter name")],
                        Annotated[str, matching(MIME_TOKEN, "parameter value")]], ...] = ()
    data: bytes


class EmailDraft(BaseModel):
    """An email ready to queue: recipients, subject, bodies and attachments, and its dedup key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Annotated[str, matching(EVENT, "event name")]
    dedup_key: Annotated[str, matching(DEDUP_KEY, "deduplication key")]
    to: tuple[Address, ...] = Field(min_length=1)
    cc: tuple[Address, ...] = ()
    subject: Annotated[SingleLine, Field(min_length=1, max_length=250)]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    # Kept beside the message so `sbu outbox` and dead-letter alerts can name the case.
    case_ref: CaseRef | None = None

    def recipients(self) -> tuple[str, ...]:
        """Every envelope recipient, To then Cc, each once."""
        return tuple(dict.fromkeys((*self.to, *self.cc)))


def draft(event: str, dedup_key: str, *, case_ref: str | None, to: tuple[str, ...],
          cc: tuple[str, ...], context: dict[str, Any], attachments: tuple[Attachment, ...] = (),
          templates: Path | None = None) -> EmailDraft:
    """The email `event`, rendered from its templates with `context` (and `case_ref`): from the
    folder `templates` (a process's own) when given, else the procedure's."""
    if case_ref is not None:
        check_case_ref(case_ref)
    if context.get("dashboard_url") is not None:
        check_url(context["dashboard_url"])
    if templates is not None and (TEMPLATES_DIR / f"{event}.txt").exists():
        raise ValueError(f"the event {event} is one of the procedure's own emails; name a process's "
                         "email for what it is about")
    values = {**context, "case_ref": case_ref}
    subject, text = render_text(event, values, templates=templates)
    html = render_html(event, {**values, "subject": subject}, templates=templates)
    # Someone on both To and Cc gets one copy, listed once, on To.
    cc = tuple(address for address in dict.fromkeys(cc) if address not in to)
    return EmailDraft(event=event, dedup_key=dedup_key, to=tuple(dict.fromkeys(to)), cc=cc,
                      subject=subject, text=text, html=html, attachments=attachments,
                      case_ref=case_ref)


@cache
def _environment(templates: Path | None) -> Environment:
    # Imported here so that importing this module (e.g. from the CLI) does not load Jinja2.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    # A process's own folder first; the procedure's after it, for the shared footer and layout.
    folders = [TEMPLATES_DIR] if templates is None else [templates, TEMPLATES_DIR]
    return Environment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug in the builder, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_text(event: str, context: dict[str, Any], *, templates: Path | None = None) -> tuple[str, str]:
    """Render `<event>.txt`: its `subject` variable and its body."""
    module = _environment(templates).get_template(f"{event}.txt").make_module(context)
    subject = " ".join(str(getattr(module, "subject", "")).split())
    if not subject:
        raise ValueError(f"template {event}.txt sets no subject")
    return subject, str(module).strip() + "\n"


def render_html(event: str, context: dict[str, Any], *, templates: Path | None = None) -> str:
    """Render `<event>.html`, the HTML alternative."""
    return _environment(templates).get_template(f"{event}.html").render(context)


def day_text(day: date) -> str:
    """A date as an email writes it: "Tuesday 7 April 2026"."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def moment_text(moment: datetime) -> str:
    """A deadline in London time. The end of a day (midnight) reads as 23:59 on that day, which is
    how a person reads 'by the end of Tuesday'."""
    require_aware(moment, "due_at")
    local = moment.astimezone(LONDON)
    if local.time() == time(0, 0):
        return f"23:59 on {day_text(local.date() - timedelta(days=1))} (London time)"
    return f"{local:%H:%M} on {day_text(local.date())} (London time)"

"""One function per event, each building an `EmailDraft` from template files.

Every builder takes only structured values: a case reference, enums, dates, the directory, the
dashboard link, and identifiers held to a strict spelling (`Subject`, `SectionName`). None takes
free text, so no email can carry a name, a child's record id, a narrative or a rationale (DESIGN.md
§4): an email says what is due on which case, never what happened. The one piece of typed text an
email carries is where the Rapid Review meeting is held (`MeetingPlace`), which is logistics. The
canary test in `tests/tasks/mail/test_canary.py` holds every builder to this.

Each draft carries a deduplication key built from stable ids and ISO dates, e.g.
`reminder:SR-2025-0001:sin-submission:2025-03-04`; the outbox refuses a second draft with the same
key, so the same reminder for the same step and due date is queued once however often it is built.

Templates live in `tasks/mail/templates/`, one `.txt` and one `.html` per event. The text template
sets the subject with `{% set subject = ... %}`; the rendered text is the plain-text body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, Self
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import CoreSchema, core_schema

from models.calendar import LONDON
from models.enums import Agency, CasePath, ReviewRoute, Role, RunLoss, Stage, StepId, StepState
from models.timetable import STEP_RULES, StepRule
from tasks.mail.directory import Address, Directory

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).with_name("templates")

# Every pattern is applied with `fullmatch`: `re.match` would let `$` accept a trailing newline.
_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
_EVENT = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_DEDUP_KEY = re.compile(r"^[A-Za-z0-9:._+@<>-]{1,200}$")
_URL = re.compile(r"^https?://[^\s<>\"'`\\\x00-\x1f\x7f]{1,490}$")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MIME_TOKEN = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,40}$")
_SUBJECT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_SECTION = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# The registry's spelling of a step id (`models.registry`): lowercase words joined by single dashes.
_STEP_NAME = re.compile(r"^(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# A step's title as its rule spells it, e.g. "National Panel's response recorded".
_STEP_TITLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ',()./&:-]{0,99}$")
_PARTNERSHIP = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_PROCESS_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class _Checked(str):
    """A `str` checked when it is made. As a pydantic field it is validated by making one, so a
    model cannot hold an unchecked value either."""

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


class Subject(_Checked):
    """Which item of a step an email is about (an agency, an action number): an identifier,
    never free text, so it is held to the same spelling as a step id."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _SUBJECT.fullmatch(value):
            raise ValueError("an item's subject is lowercase letters, digits and dashes")
        return super().__new__(cls, value)


class SectionName(_Checked):
    """The name of a section of the partnership's IMR template, e.g. `agency-involvement`: an
    identifier spelt like a `Subject`, shown in an email as words ("Agency involvement")."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _SECTION.fullmatch(value):
            raise ValueError("an IMR section's name is lowercase letters, digits and dashes")
        return super().__new__(cls, value)

    @property
    def words(self) -> str:
        """The name as a reader sees it: dashes as spaces, the first letter a capital."""
        text = self.replace("-", " ")
        return text[:1].upper() + text[1:]


class MeetingPlace(_Checked):
    """Where a meeting is held: a room, an address or a joining link (a URL may be given).

    This is the one piece of typed text an email carries. It is allowed because a meeting's room
    or link is logistics, not what happened (DESIGN.md §4): it goes into the invitation's text and
    its LOCATION, and never a name or a narrative should be typed here. It is held to one printable
    line of 2 to 200 characters without `<`, `>` or control characters, so it can add neither a
    header, nor markup, nor a line to the calendar file. Errors never echo the value."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not 2 <= len(value) <= 200 or len(value.strip()) < 2:
            raise ValueError("a meeting's place is 2 to 200 characters")
        if not value.isprintable() or "<" in value or ">" in value:
            raise ValueError("a meeting's place is one printable line without '<' or '>'")
        return super().__new__(cls, value)


class StepName(_Checked):
    """A step's id: one of the procedure's (`StepId`) or one a registered process brought, spelt
    as the registry requires (lowercase letters and digits, words joined by single dashes)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _STEP_NAME.fullmatch(value):
            raise ValueError("a step id is lowercase letters and digits joined by single dashes")
        return super().__new__(cls, value)


class ProcessName(_Checked):
    """A process's id in the registry (`case`, `rapid-review`, a partnership's own)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _PROCESS_NAME.fullmatch(value):
            raise ValueError("a process id is lowercase letters, digits and dashes")
        return super().__new__(cls, value)


class StepTitle(_Checked):
    """A step's title as its rule gives it (`StepRule.title`), e.g. "Rapid Review meeting is
    held": written in code by whoever defined the step, never typed about a case. One line of up to
    100 letters, digits, spaces and `',()./&:-`."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _STEP_TITLE.fullmatch(value):
            raise ValueError("a step's title is one line of letters, digits and simple punctuation")
        return super().__new__(cls, value)


# A step is named by its rule (any registered step) or, for the procedure's own, by its id.
StepRef = StepRule | StepId


def _rule_of(step: StepRef) -> StepRule:
    return step if isinstance(step, StepRule) else STEP_RULES[step]


def _no_line_breaks(value: str) -> str:
    # A CR or LF in a header value would start a new header: refused outright, never folded away.
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    return value


def _case_ref(value: str) -> str:
    if not _CASE_REF.fullmatch(value):
        raise ValueError("case_ref must be a case reference (letters, digits and dashes)")
    return value


def _url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError("dashboard_url must be an http(s) URL without spaces or quotes")
    return value


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"not a valid {what}")
        return value

    return AfterValidator(check)


CaseRef = Annotated[str, AfterValidator(_case_ref)]
SingleLine = Annotated[str, AfterValidator(_no_line_breaks)]


class Attachment(BaseModel):
    """A file attached to an email, e.g. the Rapid Review meeting's `invite.ics`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: Annotated[str, _matching(_FILENAME, "attachment filename")]
    maintype: Annotated[str, _matching(_MIME_TOKEN, "MIME type")]
    subtype: Annotated[str, _matching(_MIME_TOKEN, "MIME subtype")]
    # Content-Type parameters such as `method=REQUEST` for a calendar invitation.
    params: tuple[tuple[Annotated[str, _matching(_MIME_TOKEN, "parameter name")],
                        Annotated[str, _matching(_MIME_TOKEN, "parameter value")]], ...] = ()
    data: bytes


class EmailDraft(BaseModel):
    """An email ready to queue: recipients, subject, bodies and attachments, and its dedup key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Annotated[str, _matching(_EVENT, "event name")]
    dedup_key: Annotated[str, _matching(_DEDUP_KEY, "deduplication key")]
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


class DigestRow(BaseModel):
    """One open item in the daily digest: a step of a case, and which of its items (`subject`, an
    agency or an action number) when the step has several.

    `title` is the step's title from its rule; leave it out for one of the procedure's own steps
    (`STEP_RULES`), whose title is looked up. A step a registered process brought must pass it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: CaseRef
    step: StepName
    subject: Subject | None = None
    title: StepTitle | None = None
    due: date
    state: StepState
    overdue: bool

    @model_validator(mode="after")
    def _titled(self) -> DigestRow:
        if self.title is None and self.step not in STEP_RULES:
            raise ValueError("a step outside the procedure's own needs its title")
        return self

    @property
    def item(self) -> str:
        """The item as emails name it: `step` or `step:subject`, e.g. `rr-agency-responses:police`."""
        return f"{self.step}:{self.subject}" if self.subject else str(self.step)

    @property
    def step_title(self) -> str:
        """The title given, else the procedure's own for this step."""
        return str(self.title) if self.title is not None else STEP_RULES[self.step].title


class ProgressItem(BaseModel):
    """One open item of a review in the monthly progress summary: late (`days_late` working days
    past its due date) or coming. `title` as for a `DigestRow`: the rule's, needed only for a step
    a registered process brought."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: StepName
    subject: Subject | None = None
    title: StepTitle | None = None
    due: date
    days_late: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _titled(self) -> ProgressItem:
        if self.title is None and self.step not in STEP_RULES:
            raise ValueError("a step outside the procedure's own needs its title")
        return self

    @property
    def item(self) -> str:
        return f"{self.step}:{self.subject}" if self.subject else str(self.step)

    @property
    def step_title(self) -> str:
        return str(self.title) if self.title is not None else STEP_RULES[self.step].title


class ProgressRow(BaseModel):
    """One open review in the monthly progress summary: its case's stage and route, what is late,
    what comes next, and how many more items are open after those."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: CaseRef
    stage: Stage
    path: CasePath | None = None
    review: ReviewRoute | None = None
    late: tuple[ProgressItem, ...] = ()
    next: tuple[ProgressItem, ...] = ()
    more: int = Field(0, ge=0)


class ReportHeadline(BaseModel):
    """The counts a report-ready email gives: nothing but numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cases: int = Field(ge=0)
    on_time: int = Field(ge=0)
    late: int = Field(ge=0)
    open_overdue: int = Field(ge=0)
    rapid_reviews: int = Field(ge=0)
    csprs: int = Field(ge=0)
    open_actions: int = Field(ge=0)


class StepBuilder(Protocol):
    """The shape shared by the builders for one step and its owner."""

    def __call__(self, *, case_ref: str, step: StepRef, due: date, owner: Role | Agency,
                 directory: Directory, dashboard_url: str,
                 subject: Subject | None = None) -> EmailDraft: ...


# -- the builders ------------------------------------------------------------------------------

def referral_received_email(*, case_ref: str, due_at: datetime, directory: Directory,
                            dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: a referral is in; convene and decide by `due_at`
    (shown in London time)."""
    return _draft(
        "referral-received", f"referral-received:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"due_text": _moment_text(due_at), "dashboard_url": dashboard_url,
                 "step_title": STEP_RULES[StepId.DSP_DECISION].title},
    )


_PATH_TEXT: dict[CasePath, str] = {
    CasePath.SIN_AND_RAPID_REVIEW: "Serious Incident Notification and Rapid Review",
    CasePath.SIN_ONLY: "Serious Incident Notification only",
    CasePath.RAPID_REVIEW_ONLY: "Rapid Review only",
    CasePath.NEAR_MISS_RAPID_REVIEW: "Near miss: Rapid Review with a learning focus",
    CasePath.NO_FURTHER_ACTION: "No further action",
}


def decision_recorded_email(*, case_ref: str, path: CasePath, directory: Directory,
                            dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU and the local authority: the decision's path (a closed
    choice, never the rationale)."""
    return _draft(
        "decision-recorded", f"decision-recorded:{case_ref}", case_ref=case_ref,
        to=directory.dsps,
        cc=(directory.address(Role.SBU), directory.address(Role.LOCAL_AUTHORITY)),
        context={"path_text": _PATH_TEXT[path], "path": path.value, "dashboard_url": dashboard_url},
    )


def step_opened_email(*, case_ref: str, step: StepRef, due: date, owner: Role | Agency,
                      directory: Directory, dashboard_url: str,
                      subject: Subject | None = None) -> EmailDraft:
    """To the step's owner (a role's address, or an agency's designated lead), copied to the SBU:
    a step is open and due on `due`."""
    return _owned_step_draft("step-opened", case_ref=case_ref, step=step, subject=subject, due=due,
                             owner=owner, directory=directory, copy_sbu=True,
                             dashboard_url=dashboard_url)


def reminder_email(*, case_ref: str, step: StepRef, due: date, owner: Role | Agency,
                   directory: Directory, dashboard_url: str,
                   subject: Subject | None = None) -> EmailDraft:
    """To the step's owner (a role's address, or an agency's designated lead): the step is due
    soon."""
    return _owned_step_draft("reminder", case_ref=case_ref, step=step, subject=subject, due=due,
                             owner=owner, directory=directory, copy_sbu=False,
                             dashboard_url=dashboard_url)


def overdue_email(*, case_ref: str, step: StepRef, due: date, owner: Role | Agency,
                  directory: Directory, dashboard_url: str,
                  subject: Subject | None = None) -> EmailDraft:
    """To the step's owner (a role's address, or an agency's designated lead), copied to the SBU:
    the step is past its due date."""
    return _owned_step_draft("overdue", case_ref=case_ref, step=step, subject=subject, due=due,
                             owner=owner, directory=directory, copy_sbu=True,
                             dashboard_url=dashboard_url)


def escalation_email(*, case_ref: str, step: StepRef, due: date, on: date, directory: Directory,
                     dashboard_url: str, subject: Subject | None = None) -> EmailDraft:
    """To the three DSPs, copied to the SBU: an overdue step escalated; one per working day `on`."""
    return _step_draft("escalation", case_ref=case_ref, step=step, subject=subject, due=due,
                       to=directory.dsps, cc=(directory.address(Role.SBU),), dashboard_url=dashboard_url,
                       extra_key=on.isoformat(), extra={"on_text": _day_text(on)})


def rr_information_request_email(*, case_ref: str, agency: Agency, due: date, directory: Directory,
                                 dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: return the agency's Rapid Review
    information by `due`."""
    return _draft(
        "rr-information-request", f"rr-information-request:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "due_text": _day_text(due), "due": due.isoformat(),
                 "dashboard_url": dashboard_url,
                 "step_title": STEP_RULES[StepId.RR_AGENCY_RESPONSES].title},
    )


def rr_meeting_invitation_email(*, case_ref: str, starts_at: datetime, duration: timedelta,
                                place: MeetingPlace, agencies: Sequence[Agency], directory: Directory,
                                dashboard_url: str, issued_at: datetime, sequence: int) -> EmailDraft:
    """To the involved agencies' leads and the three DSPs, copied to the SBU: the Rapid Review
    meeting, with an iCalendar invitation (`invite.ics`, times in Europe/London with a TZID).

    Sequence 0 is the first invitation; every change of time or place is sent again with a higher
    `sequence`, and its subject says the meeting has moved. All of them carry the same UID, so a
    calendar replaces the meeting rather than adding another. `issued_at` becomes the DTSTAMP (pass
    the case clock's now when the invitation is decided): an update must carry a later one. Each
    sequence is its own message (`rr-meeting-invitation:<case>:<sequence>`), and building the same
    sequence again is a retry, queued once.
    """
    _require_aware(starts_at, "starts_at")
    _require_aware(issued_at, "issued_at")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if isinstance(sequence, bool) or sequence < 0:
        raise ValueError("sequence must be 0 for the first invitation, and more for each update")
    place = MeetingPlace(place)
    sbu = directory.address(Role.SBU)
    to = tuple(dict.fromkeys((*(directory.agency_lead(a) for a in agencies), *directory.dsps)))
    ics = _meeting_ics(case_ref=_case_ref(case_ref), starts_at=starts_at, duration=duration,
                       place=place, organizer=sbu, attendees=(*to, sbu),
                       dashboard_url=_url(dashboard_url), issued_at=issued_at, sequence=sequence)
    local_start = starts_at.astimezone(LONDON)
    local_end = (starts_at + duration).astimezone(LONDON)
    return _draft(
        "rr-meeting-invitation", f"rr-meeting-invitation:{case_ref}:{sequence}",
        case_ref=case_ref, to=to, cc=(sbu,),
        context={"day_text": _day_text(local_start.date()),
                 "start_text": local_start.strftime("%H:%M"), "end_text": local_end.strftime("%H:%M"),
                 "place": str(place), "moved": sequence > 0,
                 "agencies": sorted(agency.value for agency in agencies),
                 "dashboard_url": dashboard_url},
        attachments=(Attachment(filename="invite.ics", maintype="text", subtype="calendar",
                                params=(("method", "request"),), data=ics),),
    )


def cspr_commissioned_email(*, case_ref: str, commissioned_on: date, publication_target: date,
                            by_panel: bool, directory: Directory, dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: a Child Safeguarding Practice Review is commissioned
    on `commissioned_on`, to be published by `publication_target`; `by_panel` says it follows the
    National Panel's response to the Rapid Review."""
    if publication_target < commissioned_on:
        raise ValueError("publication_target cannot be before commissioned_on")
    return _draft(
        "cspr-commissioned", f"cspr-commissioned:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"commissioned_text": _day_text(commissioned_on),
                 "target_text": _day_text(publication_target), "by_panel": by_panel,
                 "dashboard_url": dashboard_url},
    )


def imr_request_email(*, case_ref: str, agency: Agency, due: date, sections: Sequence[SectionName],
                      directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: an Individual Management Review is
    requested, due by `due`, written on the partnership's IMR template (whose `sections` are
    listed). The IMR goes through the agency's secure channel; this system stores none of it."""
    names = _section_names(sections, "sections")
    return _draft(
        "imr-request", f"imr-request:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "step": f"{StepId.CSPR_IMR.value}:{agency.value}",
                 "step_title": STEP_RULES[StepId.CSPR_IMR].title, "due": due.isoformat(),
                 "due_text": _day_text(due), "sections": [name.words for name in names],
                 "dashboard_url": dashboard_url},
    )


def imr_incomplete_email(*, case_ref: str, agency: Agency, missing: Sequence[SectionName], due: date,
                         directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: the agency's IMR was received with the
    `missing` sections absent; send the rest by `due`, through the same secure channel."""
    names = _section_names(missing, "missing")
    return _draft(
        "imr-incomplete", f"imr-incomplete:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "step": f"{StepId.CSPR_IMR.value}:{agency.value}",
                 "step_title": STEP_RULES[StepId.CSPR_IMR].title, "due": due.isoformat(),
                 "due_text": _day_text(due), "missing": [name.words for name in names],
                 "dashboard_url": dashboard_url},
    )


def action_assigned_email(*, case_ref: str, action: Subject, agency: Agency, due: date,
                          directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: action `action` (e.g. `a1`) of the case's
    action plan is the agency's, due by `due`. It names the action, never its wording, which stays
    in the case store."""
    action = Subject(action)
    return _draft(
        "action-assigned", f"action-assigned:{case_ref}:{action}", case_ref=case_ref,
        to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "action": str(action),
                 "step": f"{StepId.ACTION.value}:{action}", "step_title": STEP_RULES[StepId.ACTION].title,
                 "due": due.isoformat(), "due_text": _day_text(due), "dashboard_url": dashboard_url},
    )


def case_closed_email(*, case_ref: str, closed_on: date, directory: Directory,
                      dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: the case was closed on `closed_on`."""
    return _draft(
        "case-closed", f"case-closed:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"closed_text": _day_text(closed_on), "dashboard_url": dashboard_url},
    )


def run_repaired_alert_email(*, case_ref: str, process: ProcessName, loss: RunLoss, replaced: UUID,
                             directory: Directory, dashboard_url: str) -> EmailDraft:
    """To the SBU: the reconciliation sweep found a run of `process` for `case_ref` that Prefect
    had lost (deleted, crashed or failed) and replaced it with a run that replays from the store.
    One per lost run (`replaced`, its Prefect id)."""
    process = ProcessName(process)
    return _draft(
        "run-repaired-alert", f"run-repaired:{case_ref}:{process}:{replaced}", case_ref=case_ref,
        to=(directory.address(Role.SBU),), cc=(),
        context={"process": str(process), "loss": loss.value, "replaced": str(replaced),
                 "dashboard_url": dashboard_url},
    )


def daily_digest_email(*, day: date, rows: Sequence[DigestRow], open_cases: int, horizon_end: date,
                       directory: Directory, dashboard_url: str,
                       partnership: str = "default") -> EmailDraft:
    """To the SBU: the open items in three sections, "Overdue", "Due today" and "Due by
    `horizon_end`" (the caller counts the next five working days), each by due date, and the number
    of open cases. An item not flagged overdue but due before `day` is overdue all the same; items
    due after `horizon_end` are counted, not listed. One digest per partnership and day."""
    if not _PARTNERSHIP.fullmatch(partnership):
        raise ValueError("partnership must be lowercase letters, digits and dashes")
    if horizon_end <= day:
        raise ValueError("horizon_end must be after day")
    if isinstance(open_cases, bool) or open_cases < 0:
        raise ValueError("open_cases must be a count")
    overdue: list[DigestRow] = []
    today: list[DigestRow] = []
    coming: list[DigestRow] = []
    later = 0
    for row in sorted(rows, key=lambda row: (row.due, row.case_ref, row.item)):
        if row.overdue or row.due < day:
            overdue.append(row)
        elif row.due == day:
            today.append(row)
        elif row.due <= horizon_end:
            coming.append(row)
        else:
            later += 1
    listed = [row for section in (overdue, today, coming) for row in section]
    widths = {"case_ref": max((len(row.case_ref) for row in listed), default=0),
              "item": max((len(row.item) for row in listed), default=0),
              "title": max((len(row.step_title) for row in listed), default=0)}
    sections = [{"heading": heading, "overdue": heading == "Overdue",
                 "rows": [{"case_ref": row.case_ref, "item": row.item, "step_title": row.step_title,
                           "due": row.due.isoformat(), "due_text": _day_text(row.due)}
                          for row in section]}
                for heading, section in (("Overdue", overdue), ("Due today", today),
                                         (f"Due by {_day_text(horizon_end)}", coming))]
    return _draft(
        "daily-digest", f"daily-digest:{partnership}:{day.isoformat()}", case_ref=None,
        to=(directory.address(Role.SBU),), cc=(),
        context={"day_text": _day_text(day), "horizon_text": _day_text(horizon_end),
                 "dashboard_url": dashboard_url, "open_cases": open_cases,
                 "overdue_count": len(overdue), "today_count": len(today),
                 "coming_count": len(coming), "later_count": later, "open_items": len(rows),
                 "sections": sections, "widths": widths},
    )


def progress_summary_email(*, day: date, reviews: Sequence[ProgressRow], directory: Directory,
                           dashboard_url: str, partnership: str = "default") -> EmailDraft:
    """To the SBU and the three DSPs: the monthly progress summary of every open review (Rapid
    Review or CSPR) on `day`, oldest case first as given: each case's stage and route, its late
    items (with how many working days late) and what comes next. The partners' monitoring of the
    time reviews take (Regulations 2018, reg 14). One summary per partnership and month."""
    if not _PARTNERSHIP.fullmatch(partnership):
        raise ValueError("partnership must be lowercase letters, digits and dashes")
    rows = [{"case_ref": row.case_ref, "stage": row.stage.value,
             "route": row.review.value if row.review else None,
             "path": row.path.value if row.path else None,
             "late": [_progress_item(item) for item in row.late],
             "next": [_progress_item(item) for item in row.next], "more": row.more}
            for row in reviews]
    return _draft(
        "progress-summary", f"progress-summary:{partnership}:{day:%Y-%m}", case_ref=None,
        to=(directory.address(Role.SBU), *directory.dsps), cc=(),
        context={"day_text": _day_text(day), "month_text": f"{day:%B %Y}", "reviews": rows,
                 "late_reviews": sum(1 for row in reviews if row.late), "dashboard_url": dashboard_url},
    )


def _progress_item(item: ProgressItem) -> dict[str, Any]:
    return {"item": item.item, "step_title": item.step_title, "due": item.due.isoformat(),
            "due_text": _day_text(item.due), "days_late": item.days_late}


def report_ready_email(*, period_start: date, period_end: date, headline: ReportHeadline,
                       directory: Directory, dashboard_url: str, partnership: str = "default") -> EmailDraft:
    """To the SBU: the yearly report on the cases referred from `period_start` to `period_end` is
    written, under `reports/<start>_<end>/` in the pipeline's data directory, with its headline
    counts. One per partnership and period."""
    if not _PARTNERSHIP.fullmatch(partnership):
        raise ValueError("partnership must be lowercase letters, digits and dashes")
    if period_end < period_start:
        raise ValueError("period_end cannot be before period_start")
    label = f"{period_start.isoformat()}_{period_end.isoformat()}"
    return _draft(
        "report-ready", f"report-ready:{partnership}:{label}", case_ref=None,
        to=(directory.address(Role.SBU),), cc=(),
        context={"start_text": _day_text(period_start), "end_text": _day_text(period_end),
                 "folder": f"reports/{label}/", "headline": headline.model_dump(),
                 "dashboard_url": dashboard_url},
    )


def dead_letter_alert_email(*, outbox_id: int, message_id: str, event: str, case_ref: str | None,
                            attempts: int, error: str, fallback_address: str, generation: int = 0,
                            dashboard_url: str | None = None) -> EmailDraft:
    """To the fallback address: a message could not be delivered and is now a dead letter.

    `error` is the SMTP server's reply or the transport error, already cut short by the caller; it
    names codes and hosts, not people. One alert per dead letter and `generation` (how many times
    the message has been requeued by hand), so a requeued message that dies again alerts again.
    """
    return _draft(
        "dead-letter-alert", f"dead-letter:{message_id}:{generation}", case_ref=case_ref,
        to=(fallback_address,), cc=(),
        context={"outbox_id": outbox_id, "message_id": message_id, "event": event,
                 "attempts": attempts, "error": _no_line_breaks_lenient(error),
                 "dashboard_url": dashboard_url},
    )


def refused_recipients_alert_email(*, outbox_id: int, message_id: str, event: str,
                                   case_ref: str | None, refused: Sequence[str], fallback_address: str,
                                   dashboard_url: str | None = None) -> EmailDraft:
    """To the fallback address: the server accepted a message for some recipients but refused
    others, so those people were not told."""
    return _draft(
        "recipients-refused-alert", f"recipients-refused:{message_id}", case_ref=case_ref,
        to=(fallback_address,), cc=(),
        context={"outbox_id": outbox_id, "message_id": message_id, "event": event,
                 "refused": [_no_line_breaks_lenient(item) for item in refused],
                 "dashboard_url": dashboard_url},
    )


# -- building ------------------------------------------------------------------------------------

def _owner_address(owner: Role | Agency, directory: Directory) -> str:
    # An Agency is checked first: both are StrEnums, and an agency is never a role.
    if isinstance(owner, Agency):
        return directory.agency_lead(owner)
    if owner is Role.AGENCY:
        raise ValueError("Role.AGENCY has no address: pass the Agency the item is owed by as owner")
    return directory.address(owner)


def _owned_step_draft(event: str, *, case_ref: str, step: StepRef, subject: Subject | None,
                      due: date, owner: Role | Agency, directory: Directory, copy_sbu: bool,
                      dashboard_url: str) -> EmailDraft:
    to = _owner_address(owner, directory)
    agency = owner if isinstance(owner, Agency) else None
    # An item owed by an agency is that agency's unless it has a subject of its own (an action
    # number): naming it keeps each agency's email, and its dedup key, apart from the others'.
    if agency is not None and subject is None:
        subject = Subject(agency.value)
    return _step_draft(event, case_ref=case_ref, step=step, subject=subject, due=due, to=(to,),
                       cc=(directory.address(Role.SBU),) if copy_sbu else (),
                       dashboard_url=dashboard_url,
                       extra={"agency": agency.value if agency is not None else None})


def _step_draft(event: str, *, case_ref: str, step: StepRef, subject: Subject | None, due: date,
                to: tuple[str, ...], cc: tuple[str, ...], dashboard_url: str,
                extra_key: str | None = None, extra: dict[str, Any] | None = None) -> EmailDraft:
    rule = _rule_of(step)
    # An item with a subject is named "step:subject" (e.g. one agency's part of a step), in the
    # email and in its dedup key, so each subject's reminder is its own message.
    label = f"{rule.step}:{Subject(subject)}" if subject else rule.step
    key = f"{event}:{case_ref}:{label}:{due.isoformat()}"
    if extra_key is not None:
        key = f"{key}:{extra_key}"
    context: dict[str, Any] = {"step": label, "step_title": rule.title, "about": subject or None,
                               "due": due.isoformat(), "due_text": _day_text(due),
                               "dashboard_url": dashboard_url, "agency": None, **(extra or {})}
    return _draft(event, key, case_ref=case_ref, to=to, cc=cc, context=context)


def _draft(event: str, dedup_key: str, *, case_ref: str | None, to: tuple[str, ...],
           cc: tuple[str, ...], context: dict[str, Any],
           attachments: tuple[Attachment, ...] = ()) -> EmailDraft:
    if case_ref is not None:
        _case_ref(case_ref)
    if context.get("dashboard_url") is not None:
        _url(context["dashboard_url"])
    values = {**context, "case_ref": case_ref}
    subject, text = render_text(event, values)
    html = render_html(event, {**values, "subject": subject})
    # Someone on both To and Cc gets one copy, listed once, on To.
    cc = tuple(address for address in dict.fromkeys(cc) if address not in to)
    return EmailDraft(event=event, dedup_key=dedup_key, to=tuple(dict.fromkeys(to)), cc=cc,
                      subject=subject, text=text, html=html, attachments=attachments,
                      case_ref=case_ref)


@cache
def _environment() -> Environment:
    # Imported here so that importing this module (e.g. from the CLI) does not load Jinja2.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug in the builder, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_text(event: str, context: dict[str, Any]) -> tuple[str, str]:
    """Render `<event>.txt`: its `subject` variable and its body."""
    module = _environment().get_template(f"{event}.txt").make_module(context)
    subject = " ".join(str(getattr(module, "subject", "")).split())
    if not subject:
        raise ValueError(f"template {event}.txt sets no subject")
    return subject, str(module).strip() + "\n"


def render_html(event: str, context: dict[str, Any]) -> str:
    """Render `<event>.html`, the HTML alternative."""
    return _environment().get_template(f"{event}.html").render(context)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a timezone")


def _day_text(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _moment_text(moment: datetime) -> str:
    """A deadline in London time. The end of a day (midnight) reads as 23:59 on that day, which is
    how a person reads 'by the end of Tuesday'."""
    _require_aware(moment, "due_at")
    local = moment.astimezone(LONDON)
    if local.time() == time(0, 0):
        return f"23:59 on {_day_text(local.date() - timedelta(days=1))} (London time)"
    return f"{local:%H:%M} on {_day_text(local.date())} (London time)"


def _section_names(names: Sequence[SectionName], what: str) -> list[SectionName]:
    # Checked again here: a caller's list of plain strings must not slip past the annotation.
    checked = list(dict.fromkeys(SectionName(name) for name in names))
    if not checked:
        raise ValueError(f"{what} must name at least one section")
    return checked


def _no_line_breaks_lenient(value: str) -> str:
    return " ".join(value.split())[:300]


def _meeting_ics(*, case_ref: str, starts_at: datetime, duration: timedelta, place: MeetingPlace,
                 organizer: str, attendees: Sequence[str], dashboard_url: str, issued_at: datetime,
                 sequence: int) -> bytes:
    # Imported here: icalendar is only needed for invitations.
    from icalendar import Calendar, Event, vCalAddress

    _require_aware(issued_at, "issued_at")
    calendar = Calendar()
    calendar.add("prodid", "-//Safeguarding review pipeline//sbu//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    # One UID per case's meeting: a rescheduled invitation (higher SEQUENCE) replaces the first.
    event.add("uid", f"rr-meeting-{case_ref.lower()}@{organizer.rpartition('@')[2]}")
    event.add("dtstamp", issued_at.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("dtstart", starts_at.astimezone(LONDON))
    event.add("dtend", (starts_at + duration).astimezone(LONDON))
    event.add("location", str(place))
    event.add("summary", f"Rapid Review meeting: {case_ref}")
    event.add("description", f"Rapid Review meeting for case {case_ref}. Case record: {dashboard_url}")
    event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    for address in dict.fromkeys(attendees):
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    # A VTIMEZONE for Europe/London, so clients without the Olson database read the TZID right;
    # the year either side of the meeting is enough and keeps the definition short.
    local_day = starts_at.astimezone(LONDON).date()
    calendar.add_missing_timezones(first_date=local_day - timedelta(days=366),
                                   last_date=local_day + timedelta(days=366))
    return bytes(calendar.to_ical())

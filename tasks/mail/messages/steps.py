"""The emails about a case's items, to their owner or up the ladder: a step opened, its reminder,
its overdue alert, and the escalation to the DSPs of every item of the case escalated at once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from models.effects import EscalationMail, OverdueMail, ReminderMail, StepOpenedMail
from models.enums import Agency, Role
from models.processes import STEP_RULES, StepId
from models.timetable import StepRule
from tasks.mail.checked import Subject
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft

# A step is named by its rule (any registered step) or, for the procedure's own, by its id.
StepRef = StepRule | StepId


class StepBuilder(Protocol):
    """The shape shared by the builders for one step and its owner."""

    def __call__(self, *, case_ref: str, step: StepRef, due: date, owner: Role | Agency,
                 directory: Directory, dashboard_url: str,
                 subject: Subject | None = None) -> EmailDraft: ...


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
                  directory: Directory, dashboard_url: str, working_days_late: int = 0,
                  subject: Subject | None = None) -> EmailDraft:
    """To the step's owner (a role's address, or an agency's designated lead), copied to the SBU:
    the step is past its due date, and how late it is (`working_days_late`) when the alert goes."""
    return _owned_step_draft("overdue", case_ref=case_ref, step=step, subject=subject, due=due,
                             owner=owner, directory=directory, copy_sbu=True,
                             dashboard_url=dashboard_url,
                             extra={"late_text": late_text(due, working_days_late)})


@dataclass(frozen=True, slots=True)
class EscalatedStep:
    """One overdue item in an escalation: its step, which part of it (if any), when it was due and
    how many working days late it is."""

    step: StepRef
    due: date
    working_days_late: int
    subject: Subject | None = None


def escalation_email(*, case_ref: str, on: date, items: Sequence[EscalatedStep], directory: Directory,
                     dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: the case's overdue items escalated on the working day
    `on`, all in one email, each with how late it is. One a case a day: the same items on the same
    day are the same email (its dedup key), however often it is built."""
    if not items:
        raise ValueError("an escalation lists at least one item")
    rows: list[dict[str, Any]] = []
    keys: list[str] = []
    for item in items:
        rule = _rule_of(item.step)
        label = f"{rule.step}:{Subject(item.subject)}" if item.subject else rule.step
        rows.append({"step": label, "step_title": rule.title, "about": item.subject or None,
                     "due_text": day_text(item.due),
                     "late_text": late_text(item.due, item.working_days_late)})
        keys.append(f"{label}:{item.due.isoformat()}")
    # The items listed are in the key, so a second escalation the same day (an item re-timed and
    # late again) is its own message; hashed, since a case may list many.
    listed = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]
    return draft("escalation", f"escalation:{case_ref}:{on.isoformat()}:{listed}", case_ref=case_ref,
                 to=directory.dsps, cc=(directory.address(Role.SBU),),
                 context={"on_text": day_text(on), "items": rows, "dashboard_url": dashboard_url})


def late_text(due: date, working_days_late: int) -> str:
    """How late an item is, as an email says it: "overdue since Mon 5 Apr 2027, 8 working days"."""
    days = "1 working day" if working_days_late == 1 else f"{working_days_late} working days"
    return f"overdue since {due:%a} {due.day} {due:%b %Y}, {days}"


# -- by request ------------------------------------------------------------------------------------

def _about(subject: str) -> Subject | None:
    return Subject(subject) if subject else None


@builds(StepOpenedMail)
def _step_opened(mail: StepOpenedMail, about: MailContext) -> EmailDraft:
    return step_opened_email(case_ref=about.case_ref, step=mail.rule, subject=_about(mail.subject),
                             due=mail.due, owner=mail.owner, directory=about.directory,
                             dashboard_url=about.dashboard_url)


@builds(ReminderMail)
def _reminder(mail: ReminderMail, about: MailContext) -> EmailDraft:
    return reminder_email(case_ref=about.case_ref, step=mail.rule, subject=_about(mail.subject), due=mail.due,
                          owner=mail.owner, directory=about.directory, dashboard_url=about.dashboard_url)


@builds(OverdueMail)
def _overdue(mail: OverdueMail, about: MailContext) -> EmailDraft:
    return overdue_email(case_ref=about.case_ref, step=mail.rule, subject=_about(mail.subject), due=mail.due,
                         owner=mail.owner, working_days_late=mail.working_days_late,
                         directory=about.directory, dashboard_url=about.dashboard_url)


@builds(EscalationMail)
def _escalation(mail: EscalationMail, about: MailContext) -> EmailDraft:
    items = [EscalatedStep(step=item.rule, due=item.due, working_days_late=item.working_days_late,
                           subject=_about(item.subject)) for item in mail.items]
    return escalation_email(case_ref=about.case_ref, on=mail.on, items=items, directory=about.directory,
                            dashboard_url=about.dashboard_url)


# -- building ------------------------------------------------------------------------------------

def _rule_of(step: StepRef) -> StepRule:
    return step if isinstance(step, StepRule) else STEP_RULES[step]


def _owner_address(owner: Role | Agency, directory: Directory) -> str:
    # An Agency is checked first: both are StrEnums, and an agency is never a role.
    if isinstance(owner, Agency):
        return directory.agency_lead(owner)
    if owner is Role.AGENCY:
        raise ValueError("Role.AGENCY has no address: pass the Agency the item is owed by as owner")
    return directory.address(owner)


def _owned_step_draft(event: str, *, case_ref: str, step: StepRef, subject: Subject | None,
                      due: date, owner: Role | Agency, directory: Directory, copy_sbu: bool,
                      dashboard_url: str, extra: dict[str, Any] | None = None) -> EmailDraft:
    to = _owner_address(owner, directory)
    agency = owner if isinstance(owner, Agency) else None
    # An item owed by an agency is that agency's unless it has a subject of its own (an action
    # number): naming it keeps each agency's email, and its dedup key, apart from the others'.
    if agency is not None and subject is None:
        subject = Subject(agency.value)
    return _step_draft(event, case_ref=case_ref, step=step, subject=subject, due=due, to=(to,),
                       cc=(directory.address(Role.SBU),) if copy_sbu else (),
                       dashboard_url=dashboard_url,
                       extra={"agency": agency.value if agency is not None else None, **(extra or {})})


def _step_draft(event: str, *, case_ref: str, step: StepRef, subject: Subject | None, due: date,
                to: tuple[str, ...], cc: tuple[str, ...], dashboard_url: str,
                extra: dict[str, Any] | None = None) -> EmailDraft:
    rule = _rule_of(step)
    # An item with a subject is named "step:subject" (e.g. one agency's part of a step), in the
    # email and in its dedup key, so each subject's reminder is its own message.
    label = f"{rule.step}:{Subject(subject)}" if subject else rule.step
    key = f"{event}:{case_ref}:{label}:{due.isoformat()}"
    context: dict[str, Any] = {"step": label, "step_title": rule.title, "about": subject or None,
                               "due": due.isoformat(), "due_text": day_text(due),
                               "dashboard_url": dashboard_url, "agency": None, **(extra or {})}
    return draft(event, key, case_ref=case_ref, to=to, cc=cc, context=context)

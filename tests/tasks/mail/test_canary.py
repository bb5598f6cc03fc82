"""The canary: a referral whose fields carry marker strings (a child's record id, names, the
referring agency's reference, a rationale) produces no email that contains any of them.

The builders cannot be handed those values: their parameters are case references, enums, dates,
the directory, the dashboard link and identifiers held to a strict spelling; the one piece of typed
text is a meeting's place, allowed here by name. This test holds them to that, then builds every
email the case could cause, sends them through the outbox to a real SMTP server, and searches every
header, body and attachment of every message received.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from uuid import UUID

from models.calendar import end_of_london_day
from models.clock import FixedClock
from models.enums import Agency, CasePath, ReviewRoute, Role, RunLoss, Stage, StepState
from models.forms import DspDecisionForm, parse_referral
from models.processes import StepId
from models.timetable import StepRule
from tasks.mail import messages
from tasks.mail.checked import (
    FileDigest,
    MeetingPlace,
    ProcessName,
    SectionName,
    StepName,
    StepTitle,
    Subject,
)
from tasks.mail.delivery import deliver_pending
from tasks.mail.directory import Directory
from tasks.mail.drafts import mail_requests
from tasks.mail.messages import DigestRow, LateRow, ProgressItem, ProgressRow, ReportHeadline
from tasks.mail.outbox import queue_email
from tasks.mail.rendering import EmailDraft
from tasks.mail.sender import SmtpSender
from tasks.store.db import Store
from tests.tasks.mail.conftest import FAST, SmtpServer

MARKERS = ("LA-CANARY-4242", "CANARY-EXT-0099", "Jessamine Canarywood", "Bartholomew Canarybrook",
           "Ottoline Canaryfield", "canary-rationale-marker")

CONTRACT_BUILDERS: list[Callable[..., EmailDraft]] = [
    messages.referral_received_email, messages.decision_recorded_email, messages.step_opened_email,
    messages.reminder_email, messages.overdue_email, messages.escalation_email,
    messages.rr_information_request_email, messages.rr_meeting_invitation_email,
    messages.daily_digest_email, messages.cspr_commissioned_email, messages.imr_request_email,
    messages.imr_incomplete_email, messages.action_assigned_email, messages.case_closed_email,
    messages.progress_summary_email, messages.report_ready_email, messages.run_repaired_alert_email,
    messages.import_summary_email,
]
# The alerts to the fallback address carry the mail server's reply, not a case's details.
ALERT_BUILDERS = {messages.dead_letter_alert_email, messages.refused_recipients_alert_email}
# The only str parameters a builder may take, each validated against a strict pattern.
ALLOWED_STR_PARAMETERS = {"case_ref", "dashboard_url", "partnership"}
# Validated str subclasses that hold identifiers (lowercase letters, digits and dashes).
IDENTIFIER_TYPES: set[type] = {Subject, SectionName, StepName, ProcessName, FileDigest}
# The one piece of typed text an email may carry: a meeting's room or link, which is logistics.
ALLOWED_TYPED_TEXT: set[tuple[str, type]] = {("place", MeetingPlace)}


def _referral() -> Any:
    return parse_referral({
        "referring_agency": "police", "external_ref": "CANARY-EXT-0099",
        "category": "serious-harm", "abuse_or_neglect": "suspected",
        "incident_date": "2026-03-02", "la_aware_date": "2026-03-02",
        "referred_at": "2026-03-02T10:15:00+00:00",
        "children": [{"la_record_id": "LA-CANARY-4242", "age_years": 7, "looked_after": False,
                      "care_leaver": False}],
        "agencies_involved": ["police", "health", "education"],
    }, now=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


def _decision() -> DspDecisionForm:
    return DspDecisionForm.model_validate({
        "sin": True, "rapid_review": True, "rationale": "canary-rationale-marker: the reasons the DSPs gave",
        "dsp_la": {"name": "Jessamine Canarywood"}, "dsp_health": {"name": "Bartholomew Canarybrook"},
        "dsp_police": {"name": "Ottoline Canaryfield", "deputy": True}, "decided_on": date(2026, 3, 3)})


def test_no_builder_takes_free_text() -> None:
    every_builder = {value for name, value in vars(messages).items()
                     if name.endswith("_email") and callable(value)}
    assert every_builder == {*CONTRACT_BUILDERS, *ALERT_BUILDERS}
    for builder in CONTRACT_BUILDERS:
        hints = typing.get_type_hints(builder)
        for name, parameter in inspect.signature(builder).parameters.items():
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (builder.__name__, name)
            for kind in _text_types(hints[name]):
                if kind is str:
                    assert name in ALLOWED_STR_PARAMETERS, (builder.__name__, name)
                else:
                    assert kind in IDENTIFIER_TYPES or (name, kind) in ALLOWED_TYPED_TEXT, (
                        builder.__name__, name, kind)
    digest_fields = {name: _text_types(info.annotation) for name, info in DigestRow.model_fields.items()}
    # A row's title is its step rule's, held to a title's spelling; the rest are identifiers.
    assert {name: kinds for name, kinds in digest_fields.items() if kinds} == {
        "case_ref": {str}, "step": {StepName}, "subject": {Subject}, "title": {StepTitle}}
    # The progress summary's rows hold the same, and its items are named as the digest's are.
    row_fields = {name: _text_types(info.annotation) for name, info in ProgressRow.model_fields.items()}
    assert {name: kinds for name, kinds in row_fields.items() if kinds} == {"case_ref": {str}}
    item_fields = {name: _text_types(info.annotation) for name, info in ProgressItem.model_fields.items()}
    assert {name: kinds for name, kinds in item_fields.items() if kinds} == {
        "step": {StepName}, "subject": {Subject}, "title": {StepTitle}}
    # An import's summary names each late step as the progress summary does, with its case.
    late_fields = {name: _text_types(info.annotation) for name, info in LateRow.model_fields.items()}
    assert {name: kinds for name, kinds in late_fields.items() if kinds} == {
        "case_ref": {str}, "step": {StepName}, "subject": {Subject}, "title": {StepTitle}}
    # A yearly report's notice carries counts only.
    assert all(info.annotation is int for info in ReportHeadline.model_fields.values())


# The text a mail request (`models.effects.MailRequest`) may hold, each field with the checked type
# its builder makes of it before it reaches an email; every other field is a date, a number, an
# enum or a step's rule (written in code).
REQUEST_TEXT_FIELDS = {
    ("StepOpenedMail", "subject"): Subject, ("ReminderMail", "subject"): Subject,
    ("OverdueMail", "subject"): Subject, ("EscalationMail", "subject"): Subject,
    ("ActionAssignedMail", "action"): Subject, ("ImrRequestMail", "sections"): SectionName,
    ("ImrIncompleteMail", "missing"): SectionName, ("MeetingInvitationMail", "place"): MeetingPlace,
    ("RunRepairedMail", "process"): ProcessName, ("RunRepairedMail", "replaced"): UUID,
    ("ImportSummaryMail", "file_sha256"): FileDigest,
}


def test_no_mail_request_carries_free_text() -> None:
    # The toy process's own request too, as the registry would import it.
    import tests.flows.toy_process  # noqa: F401

    requests = [kind for kind in mail_requests() if kind.__module__.startswith(("models.", "tests.flows."))]
    assert len(requests) >= 15
    text_fields = {}
    for kind in requests:
        # `models.effects` imports the rule's type for type checking only.
        hints = typing.get_type_hints(kind, localns={"StepRule": StepRule})
        for field in dataclasses.fields(kind):  # type: ignore[arg-type]
            name = field.name
            if _text_types(hints[name]):
                text_fields[(kind.__name__, name)] = REQUEST_TEXT_FIELDS.get((kind.__name__, name))
    assert text_fields == REQUEST_TEXT_FIELDS


def _text_types(hint: Any) -> set[type]:
    """`str` and every subclass of it that `hint` mentions, enums aside (closed choices)."""
    if isinstance(hint, type) and issubclass(hint, str) and not issubclass(hint, enum.Enum):
        return {hint}
    return {kind for arg in typing.get_args(hint) for kind in _text_types(arg)}


def _every_email(case_ref: str, agencies: Sequence[Agency], directory: Directory) -> list[EmailDraft]:
    url = "http://127.0.0.1:4200"
    due = date(2026, 3, 9)
    common: dict[str, Any] = {"case_ref": case_ref, "directory": directory, "dashboard_url": url}
    sections = [SectionName("agency-involvement"), SectionName("analysis"), SectionName("learning")]
    meeting: dict[str, Any] = {"duration": timedelta(hours=2), "agencies": agencies, **common}
    drafts = [
        messages.referral_received_email(due_at=end_of_london_day(date(2026, 3, 3)), **common),
        *(messages.decision_recorded_email(path=path, **common) for path in CasePath),
        messages.rr_meeting_invitation_email(starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
                                             place=MeetingPlace("Committee Room 2, Civic Centre"),
                                             issued_at=datetime(2026, 3, 3, 9, tzinfo=UTC), sequence=0,
                                             **meeting),
        messages.rr_meeting_invitation_email(starts_at=datetime(2026, 3, 13, 14, tzinfo=UTC),
                                             place=MeetingPlace("https://meet.example/j/4242"),
                                             issued_at=datetime(2026, 3, 4, 9, tzinfo=UTC), sequence=1,
                                             **meeting),
        messages.daily_digest_email(
            day=due, directory=directory, dashboard_url=url, open_cases=1, horizon_end=date(2026, 3, 16),
            rows=[*(DigestRow(case_ref=case_ref, step=step, due=due, state=StepState.OPEN, overdue=True)
                    for step in StepId),
                  *(DigestRow(case_ref=case_ref, step=StepId.CSPR_IMR, subject=Subject(agency.value),
                              due=due, state=StepState.OPEN, overdue=False) for agency in agencies),
                  DigestRow(case_ref=case_ref, step=StepName("local-learning-event"),
                            title=StepTitle("Local learning event held"), due=date(2026, 3, 16),
                            state=StepState.OPEN, overdue=False)]),
        *(messages.cspr_commissioned_email(commissioned_on=date(2026, 5, 1),
                                           publication_target=date(2026, 11, 2), by_panel=by_panel,
                                           **common) for by_panel in (False, True)),
        messages.case_closed_email(closed_on=date(2027, 1, 4), **common),
        *(messages.run_repaired_alert_email(process=ProcessName("case"), loss=loss,
                                            replaced=UUID("0b5f2c1e-8f3a-4f7e-9d3c-2a1b0c9d8e7f"), **common)
          for loss in RunLoss),
        messages.progress_summary_email(
            day=date(2026, 4, 1), directory=directory, dashboard_url=url,
            reviews=[ProgressRow(case_ref=case_ref, stage=Stage.RAPID_REVIEW,
                                 path=CasePath.SIN_AND_RAPID_REVIEW, review=ReviewRoute.LOCAL_CSPR,
                                 late=tuple(ProgressItem(step=StepId.RR_AGENCY_RESPONSES,
                                                         subject=Subject(agency.value), due=due, days_late=16)
                                            for agency in agencies),
                                 next=(ProgressItem(step=StepName("local-learning-event"),
                                                    title=StepTitle("Local learning event held"),
                                                    due=date(2026, 4, 2)),),
                                 more=3)]),
        messages.import_summary_email(
            day=date(2026, 4, 1), imported=3, file_digest=FileDigest("ab" * 32), directory=directory,
            dashboard_url=url,
            late=[LateRow(case_ref=case_ref, step=StepId.RR_AGENCY_RESPONSES, subject=Subject(agency.value),
                          title=StepTitle("Agency information for the Rapid Review"), due=due, days_late=4)
                  for agency in agencies]),
        # The yearly report's notice (`report_ready_email`) is not here: it names no case, and its
        # parameters are dates and counts (checked above), so it can carry no marker.
    ]
    for step in StepId:
        for build in (messages.step_opened_email, messages.reminder_email, messages.overdue_email):
            drafts.append(build(step=step, due=due, owner=Role.SBU, **common))
        drafts.append(messages.escalation_email(step=step, due=due, on=date(2026, 3, 10), **common))
    for number, agency in enumerate(agencies, start=1):
        action = Subject(f"a{number}")
        drafts += [
            messages.rr_information_request_email(agency=agency, due=due, **common),
            messages.reminder_email(step=StepId.RR_AGENCY_RESPONSES, due=due, owner=agency, **common),
            messages.imr_request_email(agency=agency, due=date(2026, 6, 1), sections=sections, **common),
            messages.imr_incomplete_email(agency=agency, missing=sections[1:], due=date(2026, 6, 8),
                                          **common),
            messages.action_assigned_email(action=action, agency=agency, due=date(2026, 9, 1), **common),
            messages.overdue_email(step=StepId.ACTION, subject=action, due=date(2026, 9, 1), owner=agency,
                                   **common),
        ]
    return drafts


def test_no_email_for_a_case_carries_any_marker(sqlite_store: Store, sender: SmtpSender,
                                                fixed_clock: FixedClock, directory: Directory,
                                                smtp_server: SmtpServer) -> None:
    referral = _referral()
    decision = _decision()
    assert referral.children[0].la_record_id in MARKERS
    assert decision.dsp_la.name in MARKERS
    case_ref = "SR-2026-0001"  # given by the case store, never taken from the referral
    drafts = _every_email(case_ref, referral.agencies_involved, directory)

    with sqlite_store.transaction() as session:
        # One decision (and one commissioning) per case: the variants share a dedup key, so only
        # the first is queued; every variant's text is checked below all the same.
        queued = sum(queue_email(session, draft, case_id=None, now=fixed_clock.now(),
                                 mail_from_domain="partnership.example") for draft in drafts)
    report = deliver_pending(sqlite_store, sender, now=fixed_clock, fallback_address=directory.fallback,
                             batch_size=len(drafts), **FAST)  # type: ignore[arg-type]

    received = smtp_server.messages()
    assert report.sent == queued == len(received) == len({draft.dedup_key for draft in drafts})
    for draft in drafts:
        built = "\n".join([draft.subject, draft.text, draft.html or "", *draft.to, *draft.cc,
                           *(a.data.decode() for a in draft.attachments)]).lower()
        for marker in MARKERS:
            assert marker.lower() not in built
    for raw in received:
        texts = [raw.decode("utf-8", "replace")]
        parsed = message_from_bytes(raw, policy=default_policy)
        texts += [f"{key}: {value}" for key, value in parsed.items()]
        for part in parsed.walk():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode("utf-8", "replace"))
        everything = "\n".join(texts).lower()
        for marker in MARKERS:
            assert marker.lower() not in everything
        assert case_ref in everything.upper()

"""The email for each email effect the procedure chose (`models.effects.Mail`): the procedure
decides who is told what, by kind; the builders in `tasks.mail.messages` write it."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from models.effects import (
    ActionAssignedMail,
    CaseClosedMail,
    CsprCommissionedMail,
    DecisionRecordedMail,
    EscalationMail,
    ImrIncompleteMail,
    ImrRequestMail,
    InformationRequestMail,
    Mail,
    MeetingInvitationMail,
    OverdueMail,
    ReferralReceivedMail,
    ReminderMail,
    RunRepairedMail,
    StepOpenedMail,
)
from tasks.mail import messages
from tasks.mail.directory import Directory
from tasks.mail.messages import EmailDraft, MeetingPlace, ProcessName, SectionName, Subject


def draft_for(mail: Mail, *, case_ref: str, directory: Directory, dashboard_url: str,
              now: datetime) -> EmailDraft:
    """The email `mail` asks for, about `case_ref`; `now` (case time) stamps an invitation."""
    ref, to, url = case_ref, directory, dashboard_url
    subject: str = getattr(mail, "subject", "")
    about = Subject(subject) if subject else None
    match mail:
        case ReferralReceivedMail():
            return messages.referral_received_email(case_ref=ref, due_at=mail.due_at, directory=to,
                                                    dashboard_url=url)
        case DecisionRecordedMail():
            return messages.decision_recorded_email(case_ref=ref, path=mail.path, directory=to,
                                                    dashboard_url=url)
        case StepOpenedMail():
            return messages.step_opened_email(case_ref=ref, step=mail.rule, subject=about, due=mail.due,
                                              owner=mail.owner, directory=to, dashboard_url=url)
        case ReminderMail():
            return messages.reminder_email(case_ref=ref, step=mail.rule, subject=about, due=mail.due,
                                           owner=mail.owner, directory=to, dashboard_url=url)
        case OverdueMail():
            return messages.overdue_email(case_ref=ref, step=mail.rule, subject=about, due=mail.due,
                                          owner=mail.owner, directory=to, dashboard_url=url)
        case EscalationMail():
            return messages.escalation_email(case_ref=ref, step=mail.rule, subject=about, due=mail.due,
                                             on=mail.on, directory=to, dashboard_url=url)
        case InformationRequestMail():
            return messages.rr_information_request_email(case_ref=ref, agency=mail.agency, due=mail.due,
                                                          directory=to, dashboard_url=url)
        case MeetingInvitationMail():
            return messages.rr_meeting_invitation_email(
                case_ref=ref, starts_at=mail.starts_at, duration=timedelta(minutes=mail.minutes),
                place=MeetingPlace(mail.place), agencies=mail.agencies, directory=to, dashboard_url=url,
                issued_at=now, sequence=mail.sequence)
        case CsprCommissionedMail():
            return messages.cspr_commissioned_email(case_ref=ref, commissioned_on=mail.commissioned_on,
                                                    publication_target=mail.publication_target,
                                                    by_panel=mail.by_panel, directory=to, dashboard_url=url)
        case ImrRequestMail():
            return messages.imr_request_email(case_ref=ref, agency=mail.agency, due=mail.due,
                                              sections=[SectionName(s) for s in mail.sections],
                                              directory=to, dashboard_url=url)
        case ImrIncompleteMail():
            return messages.imr_incomplete_email(case_ref=ref, agency=mail.agency, due=mail.due,
                                                 missing=[SectionName(s) for s in mail.missing],
                                                 directory=to, dashboard_url=url)
        case ActionAssignedMail():
            return messages.action_assigned_email(case_ref=ref, action=Subject(mail.action),
                                                  agency=mail.agency, due=mail.due, directory=to,
                                                  dashboard_url=url)
        case CaseClosedMail():
            return messages.case_closed_email(case_ref=ref, closed_on=mail.closed_on, directory=to,
                                              dashboard_url=url)
        case RunRepairedMail():
            return messages.run_repaired_alert_email(case_ref=ref, process=ProcessName(mail.process),
                                                     loss=mail.loss, replaced=UUID(mail.replaced),
                                                     directory=to, dashboard_url=url)
    raise AssertionError(f"unhandled email {mail!r}")

"""The email for each email effect the procedure chose (`models.effects.Mail`): the procedure
decides who is told what, by kind; the builders in `tasks.mail.messages` write it."""

from __future__ import annotations

from models.effects import (
    DecisionRecordedMail,
    EscalationMail,
    InformationRequestMail,
    Mail,
    OverdueMail,
    ReferralReceivedMail,
    ReminderMail,
    StepOpenedMail,
)
from tasks.mail import messages
from tasks.mail.directory import Directory
from tasks.mail.messages import EmailDraft, Subject


def draft_for(mail: Mail, *, case_ref: str, directory: Directory, dashboard_url: str) -> EmailDraft:
    """The email `mail` asks for, about `case_ref`."""
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
    raise AssertionError(f"unhandled email {mail!r}")

"""The action plan's email: an action assigned to its agency."""

from __future__ import annotations

from datetime import date

from models.effects import ActionAssignedMail
from models.enums import Agency, Role
from models.processes.action_plan import ACTION
from tasks.mail.checked import Subject
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft


def action_assigned_email(*, case_ref: str, action: Subject, agency: Agency, due: date,
                          directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: action `action` (e.g. `a1`) of the case's
    action plan is the agency's, due by `due`. It names the action, never its wording, which stays
    in the case store."""
    action = Subject(action)
    return draft(
        "action-assigned", f"action-assigned:{case_ref}:{action}", case_ref=case_ref,
        to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "action": str(action),
                 "step": f"{ACTION.step}:{action}", "step_title": ACTION.title,
                 "due": due.isoformat(), "due_text": day_text(due), "dashboard_url": dashboard_url},
    )


@builds(ActionAssignedMail)
def _action_assigned(mail: ActionAssignedMail, about: MailContext) -> EmailDraft:
    return action_assigned_email(case_ref=about.case_ref, action=Subject(mail.action), agency=mail.agency,
                                 due=mail.due, directory=about.directory, dashboard_url=about.dashboard_url)

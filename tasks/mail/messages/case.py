"""The case's own emails: a referral in, the DSPs' decision, the case closed, and a lost run
replaced."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from models.effects import CaseClosedMail, DecisionRecordedMail, ReferralReceivedMail, RunRepairedMail
from models.enums import CasePath, Role, RunLoss
from models.processes.case import DSP_DECISION
from tasks.mail.checked import ProcessName
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft, moment_text


def referral_received_email(*, case_ref: str, due_at: datetime, directory: Directory,
                            dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: a referral is in; convene and decide by `due_at`
    (shown in London time)."""
    return draft(
        "referral-received", f"referral-received:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"due_text": moment_text(due_at), "dashboard_url": dashboard_url,
                 "step_title": DSP_DECISION.title},
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
    return draft(
        "decision-recorded", f"decision-recorded:{case_ref}", case_ref=case_ref,
        to=directory.dsps,
        cc=(directory.address(Role.SBU), directory.address(Role.LOCAL_AUTHORITY)),
        context={"path_text": _PATH_TEXT[path], "path": path.value, "dashboard_url": dashboard_url},
    )


def case_closed_email(*, case_ref: str, closed_on: date, directory: Directory,
                      dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: the case was closed on `closed_on`."""
    return draft(
        "case-closed", f"case-closed:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"closed_text": day_text(closed_on), "dashboard_url": dashboard_url},
    )


def run_repaired_alert_email(*, case_ref: str, process: ProcessName, loss: RunLoss, replaced: UUID,
                             directory: Directory, dashboard_url: str) -> EmailDraft:
    """To the SBU: the reconciliation sweep found a run of `process` for `case_ref` that Prefect
    had lost (deleted, crashed or failed) and replaced it with a run that replays from the store.
    One per lost run (`replaced`, its Prefect id)."""
    process = ProcessName(process)
    return draft(
        "run-repaired-alert", f"run-repaired:{case_ref}:{process}:{replaced}", case_ref=case_ref,
        to=(directory.address(Role.SBU),), cc=(),
        context={"process": str(process), "loss": loss.value, "replaced": str(replaced),
                 "dashboard_url": dashboard_url},
    )


# -- by request ------------------------------------------------------------------------------------

@builds(ReferralReceivedMail)
def _referral_received(mail: ReferralReceivedMail, about: MailContext) -> EmailDraft:
    return referral_received_email(case_ref=about.case_ref, due_at=mail.due_at, directory=about.directory,
                                   dashboard_url=about.dashboard_url)


@builds(DecisionRecordedMail)
def _decision_recorded(mail: DecisionRecordedMail, about: MailContext) -> EmailDraft:
    return decision_recorded_email(case_ref=about.case_ref, path=mail.path, directory=about.directory,
                                   dashboard_url=about.dashboard_url)


@builds(CaseClosedMail)
def _case_closed(mail: CaseClosedMail, about: MailContext) -> EmailDraft:
    return case_closed_email(case_ref=about.case_ref, closed_on=mail.closed_on, directory=about.directory,
                             dashboard_url=about.dashboard_url)


@builds(RunRepairedMail)
def _run_repaired(mail: RunRepairedMail, about: MailContext) -> EmailDraft:
    return run_repaired_alert_email(case_ref=about.case_ref, process=ProcessName(mail.process),
                                    loss=mail.loss, replaced=UUID(mail.replaced), directory=about.directory,
                                    dashboard_url=about.dashboard_url)

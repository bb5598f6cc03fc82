"""The CSPR's emails: the review commissioned, each agency's IMR requested, and an IMR received
with sections missing chased for the rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from models.effects import CsprCommissionedMail, ImrIncompleteMail, ImrRequestMail
from models.enums import Agency, Role
from models.processes.cspr import IMR
from tasks.mail.checked import SectionName, section_names
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft


def cspr_commissioned_email(*, case_ref: str, commissioned_on: date, publication_target: date,
                            by_panel: bool, directory: Directory, dashboard_url: str) -> EmailDraft:
    """To the three DSPs, copied to the SBU: a Child Safeguarding Practice Review is commissioned
    on `commissioned_on`, to be published by `publication_target`; `by_panel` says it follows the
    National Panel's response to the Rapid Review."""
    if publication_target < commissioned_on:
        raise ValueError("publication_target cannot be before commissioned_on")
    return draft(
        "cspr-commissioned", f"cspr-commissioned:{case_ref}", case_ref=case_ref,
        to=directory.dsps, cc=(directory.address(Role.SBU),),
        context={"commissioned_text": day_text(commissioned_on),
                 "target_text": day_text(publication_target), "by_panel": by_panel,
                 "dashboard_url": dashboard_url},
    )


def imr_request_email(*, case_ref: str, agency: Agency, due: date, sections: Sequence[SectionName],
                      directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: an Individual Management Review is
    requested, due by `due`, written on the partnership's IMR template (whose `sections` are
    listed). The IMR goes through the agency's secure channel; this system stores none of it."""
    names = section_names(sections, "sections")
    return draft(
        "imr-request", f"imr-request:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "step": f"{IMR.step}:{agency.value}",
                 "step_title": IMR.title, "due": due.isoformat(),
                 "due_text": day_text(due), "sections": [name.words for name in names],
                 "dashboard_url": dashboard_url},
    )


def imr_incomplete_email(*, case_ref: str, agency: Agency, missing: Sequence[SectionName], due: date,
                         directory: Directory, dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: the agency's IMR was received with the
    `missing` sections absent; send the rest by `due`, through the same secure channel."""
    names = section_names(missing, "missing")
    return draft(
        "imr-incomplete", f"imr-incomplete:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "step": f"{IMR.step}:{agency.value}",
                 "step_title": IMR.title, "due": due.isoformat(),
                 "due_text": day_text(due), "missing": [name.words for name in names],
                 "dashboard_url": dashboard_url},
    )


# -- by request ------------------------------------------------------------------------------------

@builds(CsprCommissionedMail)
def _cspr_commissioned(mail: CsprCommissionedMail, about: MailContext) -> EmailDraft:
    return cspr_commissioned_email(case_ref=about.case_ref, commissioned_on=mail.commissioned_on,
                                   publication_target=mail.publication_target, by_panel=mail.by_panel,
                                   directory=about.directory, dashboard_url=about.dashboard_url)


@builds(ImrRequestMail)
def _imr_request(mail: ImrRequestMail, about: MailContext) -> EmailDraft:
    return imr_request_email(case_ref=about.case_ref, agency=mail.agency, due=mail.due,
                             sections=[SectionName(s) for s in mail.sections],
                             directory=about.directory, dashboard_url=about.dashboard_url)


@builds(ImrIncompleteMail)
def _imr_incomplete(mail: ImrIncompleteMail, about: MailContext) -> EmailDraft:
    return imr_incomplete_email(case_ref=about.case_ref, agency=mail.agency, due=mail.due,
                                missing=[SectionName(s) for s in mail.missing],
                                directory=about.directory, dashboard_url=about.dashboard_url)

"""The email about an import of open cases (`sbu import`): one to the SBU for the whole import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from models.effects import ImportSummaryMail
from models.enums import Role
from tasks.mail.checked import CaseRef, FileDigest, StepName, StepTitle, Subject, check_partnership
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.rendering import EmailDraft, day_text, draft


class LateRow(BaseModel):
    """One step of an imported case still open and already late: the case, the step (and which of
    its items), its due date and how many working days late."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: CaseRef
    step: StepName
    subject: Subject | None = None
    title: StepTitle
    due: date
    days_late: int = Field(ge=0)

    @property
    def item(self) -> str:
        return f"{self.step}:{self.subject}" if self.subject else str(self.step)


def import_summary_email(*, day: date, imported: int, late: Sequence[LateRow], file_digest: FileDigest,
                         directory: Directory, dashboard_url: str,
                         partnership: str = "default") -> EmailDraft:
    """To the SBU: the open cases imported on `day` from the file `file_digest` names, and each of
    their steps still open and already late, latest first, with how many working days late. The
    history was alerted for nothing: this is the import's one email, and each late step's
    escalations to the DSPs continue from the next working day. One per partnership and file."""
    check_partnership(partnership)
    rows = sorted(late, key=lambda row: (-row.days_late, row.case_ref, row.item))
    cases = sorted({row.case_ref for row in rows})
    return draft(
        "import-summary", f"import-summary:{partnership}:{file_digest}", case_ref=None,
        to=(directory.address(Role.SBU),), cc=(),
        context={"day_text": day_text(day), "imported": imported, "late_cases": len(cases),
                 "late": [{"case_ref": row.case_ref, "item": row.item, "step_title": row.title,
                           "due": row.due.isoformat(), "due_text": day_text(row.due),
                           "days_late": row.days_late}
                          for row in rows],
                 "file_digest": str(file_digest)[:12], "dashboard_url": dashboard_url},
    )


@builds(ImportSummaryMail)
def _import_summary(mail: ImportSummaryMail, about: MailContext) -> EmailDraft:
    return import_summary_email(
        day=mail.on, imported=mail.imported, file_digest=FileDigest(mail.file_sha256),
        late=[LateRow(case_ref=s.case_ref, step=StepName(s.step),
                      subject=Subject(s.subject) if s.subject else None, title=StepTitle(s.title), due=s.due,
                      days_late=s.days_late) for s in mail.late],
        directory=about.directory, dashboard_url=about.dashboard_url)

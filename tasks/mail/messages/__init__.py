"""The procedure's own emails, one builder function per email, grouped by what they are about:
the case (`case`), one item and its alerts (`steps`), the Rapid Review (`rapid_review`), the CSPR
(`cspr`), the action plan (`action_plan`), the digests and reports (`digests`), an import of open
cases (`importing`) and the alerts about undelivered mail (`alerts`).

Each email the procedure asks for by type (`models.effects.MailRequest`) has its builder registered
for that type beside it (`tasks.mail.drafts.builds`); importing this package registers them all.
The builder functions take only structured values (a case reference, enums, dates, the directory,
the dashboard link, identifiers of `tasks.mail.checked`), so no email can carry a name, a child's
record id, a narrative or a rationale: an email says what is due on which case, never what
happened. The canary test in `tests/tasks/mail/test_canary.py` holds every builder to this.
"""

from __future__ import annotations

from tasks.mail.messages.action_plan import action_assigned_email
from tasks.mail.messages.alerts import dead_letter_alert_email, refused_recipients_alert_email
from tasks.mail.messages.case import (
    case_closed_email,
    decision_recorded_email,
    referral_received_email,
    run_repaired_alert_email,
)
from tasks.mail.messages.cspr import cspr_commissioned_email, imr_incomplete_email, imr_request_email
from tasks.mail.messages.digests import (
    DigestRow,
    ProgressItem,
    ProgressRow,
    ReportHeadline,
    daily_digest_email,
    progress_summary_email,
    report_ready_email,
)
from tasks.mail.messages.importing import LateRow, import_summary_email
from tasks.mail.messages.rapid_review import rr_information_request_email, rr_meeting_invitation_email
from tasks.mail.messages.steps import (
    StepBuilder,
    escalation_email,
    overdue_email,
    reminder_email,
    step_opened_email,
)

__all__ = [
    "DigestRow", "LateRow", "ProgressItem", "ProgressRow", "ReportHeadline", "StepBuilder",
    "action_assigned_email", "case_closed_email", "cspr_commissioned_email", "daily_digest_email",
    "dead_letter_alert_email", "decision_recorded_email", "escalation_email", "import_summary_email",
    "imr_incomplete_email", "imr_request_email", "overdue_email",
    "progress_summary_email", "referral_received_email", "refused_recipients_alert_email",
    "reminder_email", "report_ready_email", "rr_information_request_email", "rr_meeting_invitation_email",
    "run_repaired_alert_email", "step_opened_email",
]

"""The scheduled emails end to end below Prefect: the daily digest, the monthly progress summary and
the yearly report's notice, each made from the cases of tests/tasks/report_cases.py in the store,
queued in the outbox, delivered to a real SMTP server on loopback and read back from it."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from models.clock import FixedClock
from models.enums import Role, Stage
from tasks import periodic
from tasks.mail.checked import StepName
from tasks.mail.delivery import deliver_pending
from tasks.mail.directory import Directory
from tasks.mail.messages import ProgressItem, ProgressRow, progress_summary_email
from tasks.mail.sender import SmtpSender
from tasks.reports.documents import render_progress_markdown
from tasks.service import CaseService
from tests.tasks.mail.conftest import FAST, SmtpServer
from tests.tasks.mail.test_messages import DASHBOARD, _sections
from tests.tasks.report_cases import AS_OF, AWAITING, EARLIER, NEAR_MISS, NOTIFIED, drive_cases


@pytest.fixture
def driven(service: CaseService, clock: FixedClock) -> CaseService:
    drive_cases(service, clock)
    return service


def received(service: CaseService, sender: SmtpSender, server: SmtpServer, directory: Directory,
             subject_start: str) -> list[EmailMessage]:
    """Deliver everything queued, and the messages the SMTP server took whose subject starts so."""
    deliver_pending(service.store, sender, now=service.clock, fallback_address=directory.fallback,
                    batch_size=500, **FAST)  # type: ignore[arg-type]
    found = []
    for raw in server.messages():
        message = message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        # A long subject is folded straight after "Subject:", which the parser reads back with a
        # leading space.
        if subject(message).startswith(subject_start):
            found.append(message)
    return found


def subject(message: EmailMessage) -> str:
    return str(message["Subject"]).strip()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_the_daily_digest_reaches_the_sbu_with_what_is_overdue_and_due(
        driven: CaseService, sender: SmtpSender, smtp_server: SmtpServer, directory: Directory) -> None:
    queued = periodic.queue_daily_digest(driven, day=AS_OF)
    assert (queued.queued, queued.open_cases, queued.overdue, queued.due_today, queued.due_soon) == (
        True, 4, 5, 1, 2)
    assert not periodic.queue_daily_digest(driven, day=AS_OF).queued  # one per partnership and day
    [digest] = received(driven, sender, smtp_server, directory, "[SBU] Daily digest")
    assert subject(digest) == ("[SBU] Daily digest for Thursday 21 January 2027: 5 overdue, 1 due today, "
                                 "4 open cases")
    assert digest["To"] == directory.address(Role.SBU)
    text = text_of(digest)
    assert "Open cases: 4" in text
    sections = _sections(text)
    assert list(sections) == ["Overdue", "Due today", "Due by Thursday 28 January 2027"]
    assert [line.split()[:2] for line in sections["Overdue"]] == [
        [EARLIER, "dsp-decision"], [NOTIFIED, "rr-agency-responses:education"],
        [NEAR_MISS, "rr-agency-responses:health"], [NOTIFIED, "action:a1"], [NOTIFIED, "rr-report-to-panel"]]
    assert [line.split()[:2] for line in sections["Due today"]] == [[AWAITING, "dsp-decision"]]
    assert [line.split()[:2] for line in sections["Due by Thursday 28 January 2027"]] == [
        [NEAR_MISS, "rr-meeting"], [NOTIFIED, "cspr-imr-requests"]]
    assert "Due after Thursday 28 January 2027: 8 more items" in text


def test_the_progress_summary_reaches_the_sbu_and_the_three_dsps(
        driven: CaseService, sender: SmtpSender, smtp_server: SmtpServer, directory: Directory) -> None:
    summary = periodic.read_progress_summary(driven, day=AS_OF)
    assert periodic.queue_progress_summary(driven, summary)
    assert not periodic.queue_progress_summary(driven, summary)  # one per partnership and month
    [email] = received(driven, sender, smtp_server, directory, "[SBU] Progress summary")
    assert subject(email) == "[SBU] Progress summary for January 2027: 2 open reviews, 2 with steps late"
    assert sorted(str(email["To"]).split(", ")) == sorted([directory.address(Role.SBU), *directory.dsps])
    text = text_of(email)
    assert "Progress summary of the open reviews on Thursday 21 January 2027." in text
    assert "(Regulations 2018, reg 14)" in text
    blocks = {block.split()[0]: block for block in text.split("\n\n") if block.startswith("SR-")}
    assert list(blocks) == [NOTIFIED, NEAR_MISS]
    notified = blocks[NOTIFIED].splitlines()
    assert notified[0] == f"{NOTIFIED}  stage: action-plan  path: sin-and-rapid-review  route: local-cspr"
    assert [line.split()[0] for line in notified[2:5]] == [
        "rr-agency-responses:education", "action:a1", "rr-report-to-panel"]
    assert notified[2].endswith("due 2027-01-06, 11 working days late")
    assert notified[3].endswith("due 2027-01-20, 1 working day late")
    assert [line.split()[0] for line in notified[6:9]] == [
        "cspr-imr-requests", "cspr-terms-of-reference", "rr-action-plan"]
    assert notified[9].strip() == "and 6 more items due later"
    near_miss = blocks[NEAR_MISS].splitlines()
    assert near_miss[0] == f"{NEAR_MISS}  stage: rapid-review  path: near-miss-rapid-review"
    assert near_miss[2].strip() == ("rr-agency-responses:health  Agency information for the Rapid Review  "
                                    "due 2027-01-19, 2 working days late")
    assert near_miss[4].strip() == "rr-meeting  Rapid Review meeting is held  due 2027-01-26"
    html = email.get_body(preferencelist=("html",))
    assert html is not None
    assert str(html.get_content()).index(NOTIFIED) < str(html.get_content()).index(NEAR_MISS)

    # The same summary as the run's Markdown artifact.
    markdown = render_progress_markdown(summary, partnership="default")
    assert markdown.startswith("# Progress summary of the open reviews: January 2027\n")
    assert ("| **late** | rr-agency-responses:education | Agency information for the Rapid Review "
            "| 2027-01-06 | 11 |") in markdown
    assert "| next | rr-meeting | Rapid Review meeting is held | 2027-01-26 | |" in markdown


def test_the_yearly_report_is_written_and_its_notice_gives_counts_only(
        driven: CaseService, sender: SmtpSender, smtp_server: SmtpServer, directory: Directory) -> None:
    # April's first working day: the report on 1 April 2026 to 31 March 2027, as the cases stand then.
    report = periodic.write_yearly_report(driven, day=date(2027, 4, 1))
    folder = driven.settings.data_dir / "reports" / "2026-04-01_2027-03-31"
    assert report.folder == str(folder)
    assert {path.name for path in folder.iterdir()} == {"report.md", "report.html", "cases.csv", "charts"}
    # By 1 April every item due before it is overdue: 7 of the notified case's, 2 of the near
    # miss's, the awaiting case's decision; 5 of the CSPR's are still to come.
    assert report.headline.model_dump() == {"cases": 4, "on_time": 8, "late": 4, "open_overdue": 10,
                                            "rapid_reviews": 2, "csprs": 1, "open_actions": 2}
    assert periodic.queue_report_ready(driven, report)
    assert not periodic.queue_report_ready(driven, report)  # once per year
    [notice] = received(driven, sender, smtp_server, directory, "[SBU] Yearly report ready")
    assert subject(notice) == ("[SBU] Yearly report ready: cases referred Wednesday 1 April 2026 to "
                                 "Wednesday 31 March 2027")
    assert notice["To"] == directory.address(Role.SBU)
    text = text_of(notice)
    assert "Where: reports/2026-04-01_2027-03-31/ in the pipeline's data directory (SBU_DATA_DIR)" in text
    assert "Steps open and overdue:            10" in text
    assert "  of which a CSPR was commissioned: 1" in text
    for ref in (NOTIFIED, NEAR_MISS, AWAITING, EARLIER):
        assert ref not in text  # counts only


def test_a_progress_summary_with_no_open_review_says_so(directory: Directory) -> None:
    draft = progress_summary_email(day=date(2027, 2, 1), reviews=[], directory=directory,
                                   dashboard_url=DASHBOARD, partnership="north-shire")
    assert draft.dedup_key == "progress-summary:north-shire:2027-02"
    assert draft.subject == "[SBU] Progress summary for February 2027: 0 open reviews, 0 with steps late"
    assert "No review is open." in draft.text
    row = ProgressRow(case_ref="SR-2027-0001", stage=Stage.CSPR,
                      next=(ProgressItem(step=StepName("cspr-draft-report"), due=date(2027, 5, 24)),))
    assert "Nothing else is open." not in progress_summary_email(
        day=date(2027, 2, 1), reviews=[row], directory=directory, dashboard_url=DASHBOARD).text
    with pytest.raises(ValueError, match="needs its title"):
        ProgressItem(step=StepName("local-learning-event"), due=date(2027, 5, 24))
    with pytest.raises(ValueError, match="partnership"):
        progress_summary_email(day=date(2027, 2, 1), reviews=[], directory=directory, dashboard_url=DASHBOARD,
                               partnership="North Shire")

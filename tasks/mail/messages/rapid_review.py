"""The Rapid Review's emails: each agency asked for its information, and the meeting's invitation
(with its calendar file) and every update to it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from models.calendar import LONDON
from models.effects import InformationRequestMail, MeetingInvitationMail
from models.enums import Agency, Role
from models.processes.rapid_review import AGENCY_RESPONSES
from tasks.mail.checked import MeetingPlace, check_case_ref, check_url, require_aware
from tasks.mail.directory import Directory
from tasks.mail.drafts import MailContext, builds
from tasks.mail.ical import meeting_ics
from tasks.mail.rendering import Attachment, EmailDraft, day_text, draft


def rr_information_request_email(*, case_ref: str, agency: Agency, due: date, directory: Directory,
                                 dashboard_url: str) -> EmailDraft:
    """To `agency`'s designated lead, copied to the SBU: return the agency's Rapid Review
    information by `due`."""
    return draft(
        "rr-information-request", f"rr-information-request:{case_ref}:{agency.value}:{due.isoformat()}",
        case_ref=case_ref, to=(directory.agency_lead(agency),), cc=(directory.address(Role.SBU),),
        context={"agency": agency.value, "due_text": day_text(due), "due": due.isoformat(),
                 "dashboard_url": dashboard_url,
                 "step_title": AGENCY_RESPONSES.title},
    )


def rr_meeting_invitation_email(*, case_ref: str, starts_at: datetime, duration: timedelta,
                                place: MeetingPlace, agencies: Sequence[Agency], directory: Directory,
                                dashboard_url: str, issued_at: datetime, sequence: int) -> EmailDraft:
    """To the involved agencies' leads and the three DSPs, copied to the SBU: the Rapid Review
    meeting, with an iCalendar invitation (`invite.ics`, times in Europe/London with a TZID).

    Sequence 0 is the first invitation; every change of time or place is sent again with a higher
    `sequence`, and its subject says the meeting has moved. All of them carry the same UID, so a
    calendar replaces the meeting rather than adding another. `issued_at` becomes the DTSTAMP (pass
    the case clock's now when the invitation is decided): an update must carry a later one. Each
    sequence is its own message (`rr-meeting-invitation:<case>:<sequence>`), and building the same
    sequence again is a retry, queued once.
    """
    require_aware(starts_at, "starts_at")
    require_aware(issued_at, "issued_at")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if isinstance(sequence, bool) or sequence < 0:
        raise ValueError("sequence must be 0 for the first invitation, and more for each update")
    place = MeetingPlace(place)
    sbu = directory.address(Role.SBU)
    to = tuple(dict.fromkeys((*(directory.agency_lead(a) for a in agencies), *directory.dsps)))
    ics = meeting_ics(case_ref=check_case_ref(case_ref), starts_at=starts_at, duration=duration,
                      place=place, organizer=sbu, attendees=(*to, sbu),
                      dashboard_url=check_url(dashboard_url), issued_at=issued_at, sequence=sequence)
    local_start = starts_at.astimezone(LONDON)
    local_end = (starts_at + duration).astimezone(LONDON)
    return draft(
        "rr-meeting-invitation", f"rr-meeting-invitation:{case_ref}:{sequence}",
        case_ref=case_ref, to=to, cc=(sbu,),
        context={"day_text": day_text(local_start.date()),
                 "start_text": local_start.strftime("%H:%M"), "end_text": local_end.strftime("%H:%M"),
                 "place": str(place), "moved": sequence > 0,
                 "agencies": sorted(agency.value for agency in agencies),
                 "dashboard_url": dashboard_url},
        attachments=(Attachment(filename="invite.ics", maintype="text", subtype="calendar",
                                params=(("method", "request"),), data=ics),),
    )


# -- by request ------------------------------------------------------------------------------------

@builds(InformationRequestMail)
def _information_request(mail: InformationRequestMail, about: MailContext) -> EmailDraft:
    return rr_information_request_email(case_ref=about.case_ref, agency=mail.agency, due=mail.due,
                                        directory=about.directory, dashboard_url=about.dashboard_url)


@builds(MeetingInvitationMail)
def _meeting_invitation(mail: MeetingInvitationMail, about: MailContext) -> EmailDraft:
    return rr_meeting_invitation_email(
        case_ref=about.case_ref, starts_at=mail.starts_at, duration=timedelta(minutes=mail.minutes),
        place=MeetingPlace(mail.place), agencies=mail.agencies, directory=about.directory,
        dashboard_url=about.dashboard_url, issued_at=about.now, sequence=mail.sequence)

"""Rendering the desk's pages: the template filters, what every page is given (who is at the desk,
the form token, the notice of what was just recorded), and the pages that only say something."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from models.calendar import LONDON
from models.enums import ActionSource, CasePath, ReviewRoute, Stage
from models.titles import agency_title, title_of, words

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

    from deployments.web.app import Desk
    from deployments.web.who import Officer, Session


def _day(value: date | None) -> str:
    return f"{value:%a %d %b %Y}" if value is not None else ""


def _moment(value: datetime | None) -> str:
    return f"{value.astimezone(LONDON):%a %d %b %Y, %H:%M}" if value is not None else ""


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _source(value: str) -> str:
    """Where an action comes from, as the action plan's record spells it (`rapid-review`)."""
    try:
        return title_of(ActionSource(value)).replace("The ", "the ", 1)
    except ValueError:
        return words(value)


def _dates_spelt(text: str) -> str:
    """The ISO dates in a rule's words (`re-timed on 2027-04-16`) as a person reads them."""
    from deployments.web.refusals import spell_dates

    return spell_dates(text)


_NAMED: dict[str, type[StrEnum]] = {"path": CasePath, "stage": Stage, "route": ReviewRoute}


def _named(value: str, kind: str) -> str:
    """A report's label (`sin-and-rapid-review`, `awaiting-decision`) by its title, as a `kind` of
    choice (a path, a stage, a review route)."""
    try:
        return title_of(_NAMED[kind](value))
    except ValueError:
        return words(value)


def _in_values(name: str, values: dict[str, list[str]]) -> bool:
    """Whether anything was typed for `name` (a folded group with something in it stays open)."""
    return any(value.strip() for value in values.get(name, []))


FILTERS: dict[str, Callable[..., Any]] = {
    "in_values": _in_values,
    "named": _named,
    "dates": _dates_spelt,
    "source": _source,
    "day": _day,
    "moment": _moment,
    "title": title_of,
    "agency": agency_title,
    "words": words,
    "plural": _plural,
}


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """The page `name` with `context` and what every page has."""
    from starlette.responses import HTMLResponse

    desk: Desk = request.app.state.desk
    officer: Officer | None = getattr(request.state, "officer", None)
    session: Session | None = getattr(request.state, "session", None)
    token = desk.signer.form_token(session, officer.handle if officer else "") if session else ""
    page = desk.templates.get_template(name).render({
        "nav": "", "officer": officer, "csrf_token": token, "through_gateway": desk.through_gateway,
        "notice": getattr(request.state, "notice", None), "case_time": desk.service.clock.now(),
        "dashboard_url": desk.settings.dashboard_url.rstrip("/"), **context})
    response = HTMLResponse(page, status_code=status)
    finish(request, response)
    return response


def finish(request: Request, response: Any) -> None:
    """Set the session cookie when the request began a session, and clear a notice once shown."""
    from deployments.web.who import FLASH_COOKIE, SESSION_COOKIE

    desk: Desk = request.app.state.desk
    session: Session | None = getattr(request.state, "session", None)
    if session is not None and getattr(request.state, "new_session", False):
        response.set_cookie(SESSION_COOKIE, desk.signer.session_cookie(session), httponly=True,
                            samesite="strict", path="/desk", secure=desk.secure_cookies)
    if getattr(request.state, "notice", None) is not None:
        response.delete_cookie(FLASH_COOKIE, path="/desk")


def message_page(request: Request, *, status: int, title: str, text: str,
                 link: tuple[str, str] | None = None) -> HTMLResponse:
    """A page that only says something (not signed in, not found, not open)."""
    return render(request, "message.html", {"title": title, "text": text, "link": link}, status=status)

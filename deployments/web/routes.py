"""The desk's pages, all under /desk: the cases, a case, a form for each step and act, the
referral, what is due, the reports, and (without the gateway) the name of whoever is at the desk.

A submission is read as a plain form post (`application/x-www-form-urlencoded`, at most 256 KiB),
its token checked, validated by the domain form and recorded by the case service. A refusal shows
the same form again, the problem in words at its field and everything typed kept; nothing is
written. On success the case's page says what was recorded and what opened, and the case's runs
are woken as `sbu record` wakes them (after the store has committed, off the person's request).
URLs hold a case reference and a step's name at most: nothing typed travels in one.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deployments.web import pages, views
from deployments.web.forms import (
    ANCHOR_FIELD,
    ITEM_FIELD,
    ActionSummary,
    CaseContext,
    DeskForm,
    Kind,
    Posted,
    anchor_of,
    case_form,
    case_forms,
    domain_values,
    first,
    item_of,
    referral_form,
    step_source,
    step_title,
)
from deployments.web.refusals import NOTHING_WRITTEN, Problems, from_refusal, from_validation
from deployments.web.who import (
    CSRF_FIELD,
    FLASH_COOKIE,
    SESSION_COOKIE,
    Officer,
    gateway_user,
    name_problem,
    officer_from,
)
from models.access import NOT_IN_DIRECTORY
from models.calendar import london_date
from models.enums import Agency, CasePath, CaseStatus, Stage
from models.errors import NotFound, Refused, SbuError, StoreUnavailable
from models.forms import RetimeForm, parse_referral
from models.titles import agency_title, title_of

if TYPE_CHECKING:
    from deployments.web.app import Desk
    from tasks.service import ChangeOutcome

router = APIRouter()

MAX_BODY = 256 * 1024
_CASE_REF = re.compile(r"^[A-Z][A-Z0-9]{0,7}-[0-9]{4}-[0-9]{4,6}$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CHARTS = ("timeliness", "action-ages")


class StopPage(Exception):
    """Ends a request with `response` (sign in first, not found, not allowed)."""

    def __init__(self, response: Response) -> None:
        super().__init__("stop")
        self.response = response


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _enter(request: Request, *, signing_in: bool = False) -> Officer | None:
    """Who is at the desk: the session (begun if there is none), the notice of what was just
    recorded, and the person. Stops the request when no one is (with `signing_in`, the name page
    itself, it returns None instead)."""
    desk = _desk(request)
    session = desk.signer.read_session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        session = desk.signer.new_session()
        request.state.new_session = True
    request.state.session = session
    request.state.notice = desk.signer.read_flash(request.cookies.get(FLASH_COOKIE))
    people = desk.people
    if desk.through_gateway:
        assert desk.gateway_key is not None
        user = gateway_user(request.headers, key=desk.gateway_key)
        if user is None:
            raise StopPage(views.message_page(
                request, status=401, title="Sign in first",
                text="Sign in through the partnership's sign-in page; the desk is reached through it."))
        officer = officer_from(gateway=user, session=session, people=people, through_gateway=True)
        if officer is None:
            raise StopPage(views.message_page(request, status=403, title="Not in the directory",
                                              text=NOT_IN_DIRECTORY[:1].upper() + NOT_IN_DIRECTORY[1:] + "."))
    else:
        officer = officer_from(gateway=None, session=session, people=people, through_gateway=False)
        if officer is None and not signing_in:
            response = RedirectResponse("/desk/who", status_code=303)
            views.finish(request, response)
            raise StopPage(response)
    request.state.officer = officer
    return officer


def _officer(request: Request) -> Officer:
    officer = _enter(request)
    assert officer is not None
    return officer


async def _posted(request: Request) -> Posted:
    """The form as posted; refused whole when it is not a plain form post, too large, or not UTF-8."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise StopPage(views.message_page(request, status=415, title="Not a form",
                                          text="The desk takes its own forms only; nothing was recorded."))
    body = await request.body()
    if len(body) > MAX_BODY:
        raise StopPage(views.message_page(request, status=413, title="Too much",
                                          text="The form sent more than a form holds; nothing was recorded."))
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=600, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise StopPage(views.message_page(request, status=400, title="Not readable",
                                          text="The form could not be read; nothing was recorded.")) from None


def _check_token(request: Request, officer: Officer | None, posted: Posted) -> None:
    desk = _desk(request)
    session = request.state.session
    token = first(posted, CSRF_FIELD)
    if getattr(request.state, "new_session", False) or not token or \
            not desk.signer.token_ok(session, officer.handle if officer else "", token):
        raise StopPage(views.message_page(
            request, status=403, title="This form was not accepted",
            text="It was not sent from this desk's own page, or the page is older than your session. "
                 "Nothing was recorded: go back, load the page again and submit it again."))


def _today(desk: Desk) -> date:
    return london_date(desk.service.clock.now())


def _case_ref(request: Request, case_ref: str) -> str:
    if not _CASE_REF.fullmatch(case_ref):
        raise StopPage(views.message_page(request, status=404, title="No such case",
                                          text="A case reference is its prefix, year and number: "
                                               "SR-YYYY-NNNN.", link=("/desk/", "Back to the cases")))
    return case_ref


def _context(request: Request, case_ref: str) -> CaseContext:
    from tasks.store.queries import action_plan

    desk = _desk(request)
    service = desk.service
    today = _today(desk)
    try:
        state = service.case_view(case_ref)
        actions = action_plan(service.store.engine, partnership=desk.settings.partnership, case_ref=case_ref,
                              today=today, state=state)
    except NotFound:
        raise StopPage(views.message_page(request, status=404, title="No such case",
                                          text=f"There is no case {case_ref}.",
                                          link=("/desk/", "Back to the cases"))) from None
    summaries = tuple(ActionSummary(action=a.action, summary=a.summary, agency=a.agency, due=a.due,
                                    open=a.state == "open") for a in actions)
    request.state.action_rows = actions
    return CaseContext(state=state, registry=service.registry,
                       imr_sections=desk.settings.reviews.imr_sections,
                       actions=summaries, people=desk.people, today=today)


# -- the cases -------------------------------------------------------------------------------------

def _choice(enum: Any, value: str | None) -> Any:
    try:
        return enum(value) if value else None
    except ValueError:
        return None


@router.get("/")
def cases(request: Request) -> Response:
    officer = _officer(request)
    desk = _desk(request)
    query = request.query_params
    stage, path = _choice(Stage, query.get("stage")), _choice(CasePath, query.get("path"))
    sort = _choice(pages.Sort, query.get("sort")) or pages.Sort.NEXT_DUE
    late_only = query.get("late") == "yes"
    views_ = desk.service.list_cases()
    rows = pages.case_rows(views_, today=_today(desk), calendar=desk.service.calendar,
                           stage_of=desk.service.registry.stage_of, stage=stage, path=path,
                           late_only=late_only, sort=sort)
    return views.render(request, "cases.html", {
        "rows": rows, "stage": stage, "path": path, "sort": sort, "late_only": late_only,
        "stages": [s for s in Stage if s is not Stage.CLOSED], "paths": list(CasePath),
        "sorts": pages.SORT_TITLES, "open_count": sum(1 for v in views_ if v.status is not CaseStatus.CLOSED),
        "closed_count": sum(1 for v in views_ if v.status is CaseStatus.CLOSED), "find": "",
        "find_problem": None, "may_refer": officer is not None})


@router.post("/find")
async def find(request: Request) -> Response:
    """A case by its reference (closed ones are found only so): its page, or the list again saying
    there is none, the reference typed kept in its box."""
    officer = _officer(request)
    posted = await _posted(request)
    _check_token(request, officer, posted)
    typed = first(posted, "case_ref").strip().upper()
    desk = _desk(request)
    if _CASE_REF.fullmatch(typed):
        try:
            await run_in_threadpool(desk.service.case_view, typed)
        except NotFound:
            pass
        else:
            response = RedirectResponse(f"/desk/cases/{typed}", status_code=303)
            views.finish(request, response)
            return response
    views_ = await run_in_threadpool(desk.service.list_cases)
    rows = pages.case_rows(views_, today=_today(desk), calendar=desk.service.calendar,
                           stage_of=desk.service.registry.stage_of)
    return views.render(request, "cases.html", {
        "rows": rows, "stage": None, "path": None, "sort": pages.Sort.NEXT_DUE, "late_only": False,
        "stages": [s for s in Stage if s is not Stage.CLOSED], "paths": list(CasePath),
        "sorts": pages.SORT_TITLES,
        "open_count": sum(1 for v in views_ if v.status is not CaseStatus.CLOSED),
        "closed_count": sum(1 for v in views_ if v.status is CaseStatus.CLOSED),
        "find": first(posted, "case_ref"), "may_refer": True,
        "find_problem": "There is no case with that reference. A case reference is its prefix, year and "
                        "number: SR-YYYY-NNNN."}, status=404)


# -- a case ----------------------------------------------------------------------------------------

@router.get("/cases/{case_ref}")
def case_page(request: Request, case_ref: str) -> Response:
    from tasks.store.audit import audit_entries

    officer = _officer(request)
    desk = _desk(request)
    case_ref = _case_ref(request, case_ref)
    context = _context(request, case_ref)
    state = context.state
    forms = case_forms(context, may=officer.may(desk.people, registry=desk.service.registry))
    trail = audit_entries(desk.service.store.engine, partnership=desk.settings.partnership, case_ref=case_ref,
                          limit=500)
    runs = [(desk.service.registry.process(process).title, run_id) for process, run_id in state.runs.items()
            if _known_process(desk, process)]
    ordered = sorted(forms, key=_form_order)
    return views.render(request, "case.html", {
        "case": state, "stage": context.registry.stage_of(state), "today": context.today,
        "steps": [form for form in ordered if form.kind is Kind.STEP],
        "changes": [form for form in ordered if form.kind is not Kind.STEP],
        "timeline": pages.timeline(state, today=context.today, calendar=desk.service.calendar,
                                   name_of=_name_of(desk)),
        "name_of": _name_of(desk),
        "actions": request.state.action_rows, "trail": trail, "runs": runs,
        "agencies": [agency_title(a.value) for a in state.agencies]})


def _name_of(desk: Desk) -> Callable[[str], str]:
    """A person's name from the handle the store records, where the directory has them."""
    people = desk.people

    def name_of(handle: str) -> str:
        person = people.person(handle) if people is not None and handle else None
        return person.name if person is not None else handle

    return name_of


def _known_process(desk: Desk, process: str) -> bool:
    return any(p.id == process for p in desk.service.registry.processes)


def _form_order(form: DeskForm) -> tuple[int, date, str]:
    """Steps by their earliest open due date first, then acts, then a new due date, then a new
    anchor date."""
    rank = {Kind.STEP: 0, Kind.ACT: 1, Kind.RETIME: 2, Kind.ANCHOR: 3, Kind.REFERRAL: 4}[form.kind]
    due = min((item.due for item in form.items), default=date.max)
    return rank, due, form.title


@router.get("/cases/{case_ref}/timeline.png")
def case_timeline_chart(request: Request, case_ref: str) -> Response:
    from models.reporting import report_figures
    from models.schedules import Period
    from tasks.reports.charts import timeline_chart

    _officer(request)
    desk = _desk(request)
    context = _context(request, _case_ref(request, case_ref))
    state = context.state
    figures = report_figures([state], period=Period(state.referred_on, state.referred_on),
                             as_of=context.today, calendar=desk.service.calendar,
                             partnership=desk.settings.partnership, registry=desk.service.registry)
    with tempfile.TemporaryDirectory() as folder:
        path = timeline_chart(figures.timelines[0], as_of=context.today, path=Path(folder) / "timeline.png")
        content = path.read_bytes()
    return Response(content, media_type="image/png")


# -- a form ----------------------------------------------------------------------------------------

@router.get("/cases/{case_ref}/record/{key}")
def form_page(request: Request, case_ref: str, key: str) -> Response:
    officer = _officer(request)
    desk = _desk(request)
    context = _context(request, _case_ref(request, case_ref))
    form = case_form(context, key, may=officer.may(desk.people, registry=desk.service.registry))
    if form is None:
        return _not_open(request, case_ref)
    defaults = {each.name: [each.default] for each in form.inputs if each.default}
    return _form(request, form, context, values=defaults, problems=Problems())


def _not_open(request: Request, case_ref: str) -> Response:
    return views.message_page(
        request, status=409, title="Not open on this case",
        text=f"{case_ref} does not wait for this now: it is done already, not yet open, or not yours to "
             "record. Nothing was recorded.", link=(f"/desk/cases/{case_ref}", f"Back to {case_ref}"))


def _form(request: Request, form: DeskForm, context: CaseContext | None, *, values: Posted,
          problems: Problems, status: int = 200) -> Response:
    action = f"/desk/cases/{context.state.case_ref}/record/{form.key}" if context else "/desk/refer"
    return views.render(request, "form.html", {
        "form": form, "case": context.state if context else None, "values": values, "problems": problems,
        "summary": problems.summary(form), "nothing_written": NOTHING_WRITTEN, "action": action,
        "rules": {item.step: _rule_source(request, item.step) for item in form.items}}, status=status)


def _rule_source(request: Request, step: str) -> str:
    return step_source(_desk(request).service.registry, step)


@router.post("/cases/{case_ref}/record/{key}")
async def form_post(request: Request, case_ref: str, key: str) -> Response:
    officer = _officer(request)
    posted = await _posted(request)
    _check_token(request, officer, posted)
    return await run_in_threadpool(_record, request, officer, _case_ref(request, case_ref), key, posted)


def _kept(form: DeskForm, posted: Posted) -> dict[str, list[str]]:
    """What was typed into the form's own inputs, to put back into it."""
    return {name: list(posted.get(name) or ()) for name in form.names}


def _record(request: Request, officer: Officer, case_ref: str, key: str, posted: Posted) -> Response:
    desk = _desk(request)
    service = desk.service
    context = _context(request, case_ref)
    form = case_form(context, key, may=officer.may(desk.people, registry=desk.service.registry))
    if form is None:
        return _not_open(request, case_ref)
    values = domain_values(form, posted)
    problems = Problems()
    item = anchor = None
    if form.kind is Kind.RETIME:
        item = item_of(context.state, first(posted, ITEM_FIELD))
        if item is None:
            problems.add(ITEM_FIELD, "Choose “Which step” from the open steps")
    elif form.kind is Kind.ANCHOR:
        anchor = anchor_of(context, first(posted, ANCHOR_FIELD))
        if anchor is None:
            problems.add(ANCHOR_FIELD, "Choose “Which date” from the dates given")
    try:
        validated = form.model.model_validate(values)
    except ValidationError as error:
        found = from_validation(error, form)
        problems.at.update({name: [*problems.at.get(name, []), *each] for name, each in found.at.items()})
        problems.general += found.general
    if problems:
        return _form(request, form, context, values=_kept(form, posted), problems=problems, status=422)
    try:
        match form.kind:
            case Kind.STEP:
                outcome = service.record(case_ref, form.key, validated, actor=officer.actor)
            case Kind.ACT:
                outcome = service.act(case_ref, form.key, validated, actor=officer.actor)
            case Kind.RETIME:
                assert item is not None
                assert isinstance(validated, RetimeForm)
                outcome = service.retime(case_ref, item.step, validated, subject=item.subject,
                                         actor=officer.actor)
            case Kind.ANCHOR:
                assert anchor is not None
                assert isinstance(validated, RetimeForm)
                outcome = service.move_anchor(case_ref, anchor, validated, actor=officer.actor)
            case _:
                raise AssertionError(f"unhandled form kind {form.kind}")
    except (Refused, NotFound) as refusal:
        return _form(request, form, context, values=_kept(form, posted),
                     problems=from_refusal(str(refusal), form), status=422)
    except StoreUnavailable:
        problems.add(None, "The case store could not be reached; nothing was recorded. Submit the form "
                           "again.")
        return _form(request, form, context, values=_kept(form, posted), problems=problems, status=503)
    step = form.key if form.kind in (Kind.STEP, Kind.ACT) else None

    def wake() -> str | None:
        from tasks.prefect.resume import wake_case

        return wake_case(service, case_ref, step=step)

    desk.after_change(wake, case_ref=case_ref)
    return _done(request, case_ref, form.title, outcome)


def _label_title(desk: Desk, label: str) -> str:
    step, _, subject = label.partition(":")
    title = step_title(desk.service.registry, step)
    if subject:
        title += f" ({agency_title(subject) if subject in {a.value for a in Agency} else subject.upper()})"
    return title


def _done(request: Request, case_ref: str, what: str, outcome: ChangeOutcome) -> Response:
    desk = _desk(request)
    processes = {p.id: p.title for p in desk.service.registry.processes}
    notice = {"case_ref": case_ref, "what": what, "already": outcome.already_recorded,
              "recorded": [_label_title(desk, label) for label in outcome.completed],
              "retimed": [_label_title(desk, label) for label in outcome.retimed],
              "opened": [_label_title(desk, label) for label in outcome.opened],
              "started": [processes.get(p, p) for p in outcome.started], "closed": outcome.closed,
              "prefect": desk.prefect_note()}
    response = RedirectResponse(f"/desk/cases/{case_ref}", status_code=303)
    response.set_cookie(FLASH_COOKIE, desk.signer.flash_cookie(notice), httponly=True, samesite="strict",
                        path="/desk", max_age=300, secure=desk.secure_cookies)
    views.finish(request, response)
    return response


# -- the referral ------------------------------------------------------------------------------------

@router.get("/refer")
def refer_page(request: Request) -> Response:
    _officer(request)
    form = referral_form(today=_today(_desk(request)))
    return _form(request, form, None, values={}, problems=Problems())


@router.post("/refer")
async def refer_post(request: Request) -> Response:
    officer = _officer(request)
    posted = await _posted(request)
    _check_token(request, officer, posted)
    return await run_in_threadpool(_refer, request, officer, posted)


def _refer(request: Request, officer: Officer, posted: Posted) -> Response:
    desk = _desk(request)
    service = desk.service
    form = referral_form(today=_today(desk))
    try:
        referral = parse_referral(domain_values(form, posted), now=service.clock.now())
        outcome = service.refer(referral, actor=officer.actor)
    except ValidationError as error:
        return _form(request, form, None, values=_kept(form, posted), problems=from_validation(error, form),
                     status=422)
    except (Refused, SbuError) as refusal:
        return _form(request, form, None, values=_kept(form, posted),
                     problems=from_refusal(str(refusal), form), status=422)
    case_ref = outcome.case_ref

    def tell() -> str | None:
        from tasks.prefect.runs import create_case_run

        return create_case_run(service, case_ref)

    if outcome.created:
        desk.after_change(tell, case_ref=case_ref)
    state = service.case_view(case_ref)
    from tasks.service import ChangeOutcome

    opened = tuple(item.label for item in state.open_steps())
    return _done(request, case_ref, "Referral",
                 ChangeOutcome(case_ref=case_ref, already_recorded=not outcome.created,
                               opened=opened if outcome.created else ()))


# -- what is due -------------------------------------------------------------------------------------

@router.get("/due")
def due(request: Request) -> Response:
    _officer(request)
    desk = _desk(request)
    query = request.query_params
    views_ = desk.service.list_cases()
    steps = pages.steps_open(views_)
    step = query.get("step") if query.get("step") in {s for s, _ in steps} else None
    agency = _choice(Agency, query.get("agency"))
    lists = pages.due_lists(views_, today=_today(desk), calendar=desk.service.calendar, step=step,
                            agency=agency)
    return views.render(request, "due.html", {
        "lists": lists, "steps": steps, "step": step, "agency": agency,
        "agencies": sorted(Agency, key=title_of)})


# -- the reports -------------------------------------------------------------------------------------

@router.get("/reports")
def reports(request: Request) -> Response:
    _officer(request)
    today = _today(_desk(request))
    start = date(today.year if today.month >= 4 else today.year - 1, 4, 1)
    return views.render(request, "reports.html", {"values": {"start": [start.isoformat()],
                                                              "end": [today.isoformat()]},
                                                   "problem": None})


@router.post("/reports")
async def reports_post(request: Request) -> Response:
    officer = _officer(request)
    posted = await _posted(request)
    _check_token(request, officer, posted)
    start, end = first(posted, "start"), first(posted, "end")
    problem = None
    if not (_DAY.fullmatch(start) and _DAY.fullmatch(end)):
        problem = "Enter both dates"
    elif _period(start, end) is None:
        problem = "“To” must be a real date on or after “From”"
    if problem:
        return views.render(request, "reports.html", {"values": {"start": [start], "end": [end]},
                                                      "problem": problem}, status=422)
    response = RedirectResponse(f"/desk/reports/{start}/{end}", status_code=303)
    views.finish(request, response)
    return response


def _period(start: str, end: str) -> Any:
    from models.schedules import Period

    try:
        return Period(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError:
        return None


def _figures(request: Request, start: str, end: str) -> Any:
    from models.reporting import report_figures

    desk = _desk(request)
    period = _period(start, end) if _DAY.fullmatch(start) and _DAY.fullmatch(end) else None
    if period is None:
        raise StopPage(views.message_page(request, status=404, title="No such period",
                                          text="A report's period is two dates, the first on or before the "
                                               "second.", link=("/desk/reports", "Back to the reports")))
    return report_figures(desk.service.list_cases(), period=period, as_of=_today(desk),
                          calendar=desk.service.calendar, partnership=desk.settings.partnership,
                          registry=desk.service.registry)


@router.get("/reports/{start}/{end}")
def report(request: Request, start: str, end: str) -> Response:
    from tasks.reports.documents import report_context

    _officer(request)
    figures = _figures(request, start, end)
    base = f"/desk/reports/{start}/{end}/charts"
    context = report_context(figures, charts={"timeliness": f"{base}/timeliness.png",
                                              "action_ages": f"{base}/action-ages.png"},
                             timelines={ref: f"{base}/timeline-{ref}.png" for ref in figures.case_refs})
    return views.render(request, "report.html", {"report": context})


@router.get("/reports/{start}/{end}/charts/{name}.png")
def report_chart(request: Request, start: str, end: str, name: str) -> Response:
    from tasks.reports import charts

    _officer(request)
    figures = _figures(request, start, end)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chart.png"
        if name == "timeliness":
            charts.timeliness_chart(figures.timeliness, path)
        elif name == "action-ages":
            charts.action_age_chart(figures.action_ages, path)
        else:
            timeline = next((t for t in figures.timelines if f"timeline-{t.case_ref}" == name), None)
            if timeline is None:
                return views.message_page(request, status=404, title="No such chart", text="")
            charts.timeline_chart(timeline, as_of=figures.as_of, path=path)
        return Response(path.read_bytes(), media_type="image/png")


@router.get("/progress")
def progress(request: Request) -> Response:
    from models.reporting import progress_summary

    _officer(request)
    desk = _desk(request)
    summary = progress_summary(desk.service.list_cases(), day=_today(desk), calendar=desk.service.calendar,
                               registry=desk.service.registry)
    return views.render(request, "progress.html", {"summary": summary})


# -- who is at the desk, without the gateway ------------------------------------------------------------

@router.get("/who")
def who(request: Request) -> Response:
    officer = _enter(request, signing_in=True)
    desk = _desk(request)
    if desk.through_gateway:
        response = RedirectResponse("/desk/", status_code=303)
        views.finish(request, response)
        return response
    return views.render(request, "who.html", {"values": {"name": [officer.handle] if officer else []},
                                              "problem": None, "people": _people_options(desk)})


def _people_options(desk: Desk) -> list[tuple[str, str]] | None:
    if desk.people is None:
        return None
    return sorted(((p.handle, p.name) for p in desk.people.by_handle.values()), key=lambda pair: pair[1])


@router.post("/who")
async def who_post(request: Request) -> Response:
    officer = _enter(request, signing_in=True)
    desk = _desk(request)
    posted = await _posted(request)
    _check_token(request, officer, posted)
    name = first(posted, "name").strip()
    problem = name_problem(name)
    if problem is None and desk.people is not None and desk.people.person(name) is None:
        problem = "Choose yourself from the partnership's directory"
    if problem is not None or desk.through_gateway:
        return views.render(request, "who.html", {"values": {"name": [first(posted, "name")]},
                                                  "problem": problem, "people": _people_options(desk)},
                            status=422)
    session = desk.signer.new_session(name)
    request.state.session, request.state.new_session = session, True
    response = RedirectResponse("/desk/", status_code=303)
    views.finish(request, response)
    return response

"""The dashboard's forms in a real browser: headless Chromium (Debian's) on the Prefect UI.

1. Every wait's form, as the flow stores it for a case, is drawn with no "(Optional)" on a field
   the procedure requires, and submitted with one required field left empty it is refused by the
   dashboard itself: the field is marked, nothing is resumed, Prefect stores no answer. Each form
   waits on a run suspended through Prefect's API with the schema and description `suspend_flow_run`
   would store (the flow's own waits are the second test's); every other field is filled in through
   the schema's defaults, which the UI fills in as it draws the form.
2. A case run by `sbu serve`: the DSPs' decision typed into the form, refused by a rule of the
   procedure, comes back with the reason at the top, in words, and what was chosen filled in again
   (yes or no, the date), what was typed not; then answered, and the notification's form, refused
   for a date to come, comes back on the tab chosen with its date. The case's timeline is one table
   that fits a 1,280 px screen, and the case's run links to it.

`SBU_UPDATE_DOCS=1` also writes the screenshots of the refused form and of the timeline to `docs/`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from deployments.local import STALL_ALLOWANCE, wait_until
from models.descriptions import form_markdown
from models.processes import BUILTIN_PROCESSES
from models.registry import Wait
from tasks.prefect.resume import waiting_key
from tasks.run_inputs import RECORD, RECORDED_BY, case_form
from tests.conftest import EXAMPLE_REFERRAL
from tests.flows.browser import (
    PATIENCE_MS,
    RESUMED,
    Dashboard,
    browser_context,
    choose,
    field_of,
    pick_date,
    pick_tab,
    type_into,
)
from tests.flows.conftest import SystemFactory
from tests.flows.test_dashboard_browser_e2e import chromium
from tests.tasks.test_dashboard_form_schemas import SECTIONS, domain_fields, fields, label, open_case

if TYPE_CHECKING:
    from playwright.sync_api import Locator
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import State

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

__all__ = ["chromium"]  # the fixture, shared with the other browser test

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
WAITS = [(process, wait) for process in BUILTIN_PROCESSES for wait in process.waits]
FILLED = "Filled in"


@pytest.fixture(autouse=True)
def patient_expectations() -> Iterator[None]:
    """A person's patience for what the dashboard shows (`PATIENCE_MS`), not Playwright's 5 s: on a
    busy two-core machine a form's schema can take longer than that to arrive."""
    from playwright.sync_api import expect

    expect.set_options(timeout=PATIENCE_MS)
    yield
    expect.set_options(timeout=5_000)


@contextmanager
def prefect_client(api_url: str) -> Iterator[SyncPrefectClient]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def filled(prop: dict[str, Any]) -> Any:
    """A value for a field that meets its schema: a choice's first option, a date, some text."""
    if prop.get("enum"):
        return prop["enum"][0]
    match prop.get("type"):
        case "object":
            return {name: filled(inner) for name, inner in prop.get("properties", {}).items()
                    if name in prop.get("required", [])}
        case "array":
            return [filled(prop.get("items", {}))]
        case "boolean":
            return False
        case _ if prop.get("format") == "date":
            return "2027-01-20"
        case _:
            return FILLED


def all_but_one(schema: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """`schema` with every required field of its (first) choice filled in by default but one, and the
    title of that one: the last the choice requires (a date, or a choice of the case's)."""
    shown = copy.deepcopy(schema)
    properties = shown["properties"]
    properties[RECORDED_BY]["default"] = "Robin Hale"
    if RECORD in properties:
        tab = properties[RECORD]["anyOf"][0]
        answer = filled(tab)
        left = tab["required"][-1]
        del answer[left]
        properties[RECORD]["default"] = answer
        return shown, str(tab["properties"][left]["title"])
    required = [name for name in shown["required"] if name != RECORDED_BY]
    left = required[-1]
    for name in required[:-1]:
        properties[name]["default"] = filled(properties[name])
    return shown, str(properties[left]["title"])


def suspend(client: SyncPrefectClient, wait: Wait, schema: dict[str, Any], description: str) -> UUID:
    """A run suspended on `wait`'s first key, with `schema` and `description` stored as
    `suspend_flow_run` stores a form's."""
    from prefect import flow
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.states import Suspended

    @flow(name="dashboard-form")
    def holder() -> None:
        """Never run: a run for a form to wait on."""

    run = client.create_flow_run(holder, name=f"form {wait.name}")
    state: State[Any] = Suspended(pause_key=f"{wait.name}-1", timeout_seconds=3600)
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = {str(name): key for name, key in keyset.items()}
    client.set_flow_run_state(run.id, state, force=True)
    client.create_flow_run_input(run.id, keyset["schema"], json.dumps(schema))
    client.create_flow_run_input(run.id, keyset["description"], json.dumps(description))
    return run.id


def labels(dialog: Locator) -> list[str]:
    return [text.strip() for text in dialog.locator(".schema-form-property__label").all_inner_texts()]


@pytest.mark.timeout(900)
def test_every_form_marks_what_is_required_and_refuses_it_left_empty(chromium: None,
                                                                     prefect_api_url: str) -> None:
    from playwright.sync_api import expect

    base_url = prefect_api_url.removesuffix("/api")
    checked: list[str] = []
    with prefect_client(prefect_api_url) as client, browser_context() as context:
        dashboard = Dashboard(context, base_url)
        for process, wait in WAITS:
            state = open_case(process, wait)
            form = case_form(wait, state, imr_sections=SECTIONS)
            schema = form.model_json_schema()
            shown, left = all_but_one(schema)
            run_id = suspend(client, wait, shown, form_markdown(wait, state, None))
            dialog = dashboard.open_form(str(run_id), f"{wait.title} for case {state.case_ref}")
            # What the UI writes beside each field is what the procedure says of it.
            required = domain_fields(wait)
            optional = {str(prop.get("title")) for path, prop, parent in fields(schema)
                        if path in required and not required[path]}
            for text in labels(dialog):
                if text.endswith("(Optional)"):
                    assert text.removesuffix(" (Optional)") in optional, (wait.name, text)
            assert not any(label(prop, parent, path[-1]).endswith("(Optional)")
                           for path, prop, parent in fields(schema) if required.get(path)), wait.name

            toasts = len(dashboard.toasts)
            dialog.get_by_role("button", name="Submit", exact=True).click()
            # The dashboard keeps the form open and says what is wrong: at the field left empty,
            # or, in a choice's tab, under the choice (Prefect's check reports a tab as a whole).
            if RECORD in schema["properties"]:
                message = field_of(dialog, "What to record").locator(".p-label__message").first
                expect(message).to_contain_text("is not valid")
            else:
                message = field_of(dialog, left).locator(".p-label__message").first
                expect(message).to_contain_text("required", ignore_case=True)
            expect(dialog).to_be_visible()
            run = client.read_flow_run(run_id)
            assert waiting_key(run) == f"{wait.name}-1", wait.name
            stored = [item.key for item in client.filter_flow_run_input(run_id, key_prefix="", limit=50,
                                                                         exclude_keys=set())]
            assert not any(key.endswith("-response") for key in stored), (wait.name, stored)
            assert dashboard.toasts[toasts:] == [], (wait.name, dashboard.toasts[toasts:])
            checked.append(f"{wait.name}: {left}")
            dialog.get_by_role("button", name="Close", exact=True).click()
        assert dashboard.went_wrong == []
    print(f"\nrefused with a required field empty: {checked}")
    assert len(checked) == len(WAITS)


CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 23)  # the referral day, and "today" on the case clock
SIGNATURES = {"Director of Children's Services (local authority)": "Dana Lee",
              "Director of Nursing (ICB)": "Sam Patel", "Chief Superintendent (police)": "Alex Morgan"}
REFUSED = "Your answer was not recorded."


def refusal_first(dialog: Locator) -> str:
    """The reason the form was asked again, checked to be the first thing on it, above its title."""
    from playwright.sync_api import expect

    reason = dialog.locator("blockquote").first
    expect(reason).to_contain_text(REFUSED)
    heading = dialog.get_by_role("heading", level=2)
    above, title = reason.bounding_box(), heading.bounding_box()
    assert above is not None
    assert title is not None
    assert above["y"] < title["y"]
    return reason.inner_text()


def screenshot(dashboard: Dashboard, target: Locator, path: Path) -> None:
    """`target` whole, as a person sees it on a 1,280 px wide screen."""
    page = dashboard.page
    page.set_viewport_size({"width": 1280, "height": 2600})
    target.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})


@pytest.mark.timeout(1200)
def test_a_refused_answer_comes_back_with_the_reason_first_and_what_was_chosen(
        chromium: None, local_system: SystemFactory, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    system = local_system(case_start=CASE_START)
    assert system.api_url is not None
    base_url = system.api_url.removesuffix("/api")
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(dict(EXAMPLE_REFERRAL, category="death", abuse_or_neglect="not-suspected",
                                        children=[{"la_record_id": "LA-000777", "age_years": 15,
                                                   "looked_after": True, "care_leaver": False}])))
    case_ref = str(system.sbu_json("refer", str(referral))["case_ref"])
    run_id = str(system.wait_for_wait(case_ref, "dsp-decision").id)
    typed = "Natural causes; no concerns about the care given."
    with browser_context() as context:
        dashboard = Dashboard(context, base_url)
        # "No SIN" for a looked-after child's death: the procedure refuses it.
        form = dashboard.open_form(run_id, f"DSP decision for case {case_ref}")
        choose(form, "SIN", "no")
        choose(form, "Rapid Review", "no")
        type_into(form, "Rationale", typed)
        for role, name in SIGNATURES.items():
            type_into(field_of(form, role), "Name", name)
        pick_date(form, "Decided on", DAY)
        type_into(form, "Recorded by", "Dana Duty")
        assert dashboard.submit(form) == RESUMED
        system.wait_for_wait(case_ref, "dsp-decision-2")

        form = dashboard.open_form(run_id, f"DSP decision for case {case_ref}")
        reason = refusal_first(form)
        assert "looked-after" in reason
        # What was chosen is filled in again; what was typed is not.
        for choice in ("SIN", "Rapid Review"):
            expect(field_of(form, choice).locator(".p-select-button__value")).to_have_text("no")
        expect(field_of(form, "Decided on").locator(".p-date-button__value")).not_to_have_text("Select date")
        expect(field_of(form, "Rationale").locator("textarea")).to_have_value("")
        expect(field_of(form, "Recorded by").locator("textarea, input").first).to_have_value("")
        shot = tmp_path / "dashboard-refused-form.png"
        screenshot(dashboard, form, shot)
        if os.environ.get("SBU_UPDATE_DOCS") == "1":
            shutil.copyfile(shot, DOCS / "dashboard-refused-form.png")

        # Put right: the decision is recorded.
        choose(form, "SIN", "yes")
        type_into(form, "Rationale", "Looked-after child: notification is mandatory.")
        for role, name in SIGNATURES.items():
            type_into(field_of(form, role), "Name", name)
        type_into(form, "Recorded by", "Dana Duty")
        assert dashboard.submit(form) == RESUMED
        system.wait_for_wait(case_ref, "notification-")

        # A SIN submitted tomorrow: refused, and asked again on the same tab with its date.
        form = dashboard.open_form(run_id, f"Notification by the local authority for case {case_ref}")
        sin = pick_tab(form, "What to record", "SIN submitted")
        type_into(sin, "National reference", "CSIN-2026-0777")
        pick_date(sin, "Submitted on", date(2026, 12, 24))
        type_into(form, "Recorded by", "Alex Notifier")
        before = waiting_key(system.run(UUID(run_id)))
        assert dashboard.submit(form) == RESUMED

        def asked_again() -> str | None:
            key = waiting_key(system.run(UUID(run_id)))
            return key if key is not None and key != before else None

        wait_until(asked_again, timeout=60 + STALL_ALLOWANCE, what="the notification to be asked again")
        form = dashboard.open_form(run_id, f"Notification by the local authority for case {case_ref}")
        reason = refusal_first(form)
        assert "“Submitted on” is in the future" in reason, reason
        assert "completed_on" not in reason
        tab = field_of(form, "What to record")
        chosen = tab.locator(".p-button-group").first.get_by_role("button", name="SIN submitted", exact=True)
        expect(chosen).to_have_attribute("aria-selected", "true")
        expect(field_of(tab, "Submitted on").locator(".p-date-button__value")).not_to_have_text("Select date")
        expect(field_of(tab, "National reference").locator("textarea, input").first).to_have_value("")

        # The case's timeline: one table on a 1,280 px screen, linked from the case's run.
        page = dashboard.page
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(f"{base_url}/runs/flow-run/{run_id}")
        page.get_by_role("tablist").get_by_text("Artifacts", exact=True).click()
        page.get_by_text(re.compile(f"timeline-link-{case_ref.lower()}|The latest timeline of case")) \
            .first.click()
        link = page.get_by_role("link", name=f"Timeline of case {case_ref}")
        expect(link).to_be_visible()
        # The UI opens an artifact's link in a tab of its own: followed here in this one.
        href = link.get_attribute("href")
        assert href == f"/artifacts/key/timeline-{case_ref.lower()}", href
        page.goto(f"{base_url}{href}")
        # The timeline's page lists its versions, newest first: the newest is the table.
        page.get_by_role("listitem").first.get_by_role("heading", level=6).get_by_role("link").click()
        table = page.locator("table").first
        expect(table).to_contain_text("Where it stands")
        # Whole on the screen: the page does not scroll sideways, nor does the table within its box
        # (the dashboard draws each cell on one line and scrolls a table too wide for its box).
        widths = page.evaluate("""() => {
            const table = document.querySelector('table');
            const box = table.closest('.markdown-renderer__table') || table.parentElement;
            return [document.documentElement.scrollWidth, table.getBoundingClientRect().right,
                    box.scrollWidth, box.clientWidth];
        }""")
        assert widths[0] <= 1280, widths
        assert widths[1] <= 1280, widths
        assert widths[2] <= widths[3], widths
        timeline = tmp_path / "dashboard-timeline.png"
        page.screenshot(path=str(timeline), full_page=True)
        if os.environ.get("SBU_UPDATE_DOCS") == "1":
            shutil.copyfile(timeline, DOCS / "dashboard-timeline.png")
        assert dashboard.went_wrong == []

    print(f"\nscreenshots: {shot}, {timeline}")

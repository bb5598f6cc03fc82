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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from models.descriptions import form_markdown
from models.processes import BUILTIN_PROCESSES
from models.registry import Wait
from tasks.prefect.resume import waiting_key
from tasks.run_inputs import RECORD, RECORDED_BY, case_form
from tests.flows.browser import (
    Dashboard,
    browser_context,
    field_of,
)
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
    title of that one: the last the choice requires."""
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
            # The dashboard marks the field left empty and keeps the form open.
            box = field_of(dialog, left)
            expect(box.locator(".p-label__message")).to_contain_text("required", ignore_case=True)
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

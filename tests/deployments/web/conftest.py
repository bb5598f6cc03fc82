"""The desk on a real store (SQLite, and PostgreSQL in a schema of its own), its clock on the walk's
case days, with or without the people directory and the gateway's key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from deployments.web.app import desk_app
from models.clock import FixedClock
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.deployments.web.desk_client import DeskClient
from tests.deployments.web.walk import PEOPLE_TOML, start_clock

GATEWAY_KEY = "k" * 40

DeskFactory = Callable[..., DeskClient]


@pytest.fixture
def walk_clock() -> FixedClock:
    return start_clock()


@pytest.fixture
def people_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.toml"
    path.write_text(PEOPLE_TOML)
    return path


@pytest.fixture
def desk_settings(settings: Settings, people_file: Path) -> Callable[..., Settings]:
    """The test's settings, with the people directory, the gateway's key and process modules of
    the test's own (`SBU_PROCESS_MODULES`) when asked."""
    def make(*, people: bool = False, gateway: bool = False, modules: tuple[str, ...] = ()) -> Settings:
        update: dict[str, object] = {}
        if people:
            update["people_file"] = people_file
        if gateway:
            update["gateway_key"] = SecretStr(GATEWAY_KEY)
        if modules:
            update["process_modules"] = modules
        return settings.model_copy(update=update)

    return make


@pytest.fixture
def open_desk(store: Store, desk_settings: Callable[..., Settings], walk_clock: FixedClock) -> DeskFactory:
    """A person's browser at a desk on the test's store: `open_desk("Sam Officer")` without the
    gateway (signed in by name), `open_desk("kshaw", gateway=True, people=True)` behind it, and
    `modules=("tests.models.practitioner_event",)` with a step of the test's own registered."""
    def make(user: str, *, people: bool = False, gateway: bool = False,
             modules: tuple[str, ...] = ()) -> DeskClient:
        settings = desk_settings(people=people, gateway=gateway, modules=modules)
        service = CaseService(store=store, settings=settings, clock=walk_clock)
        app = desk_app(settings, service=service, tell_prefect=False)
        client = TestClient(app, follow_redirects=False)
        desk = DeskClient(client, user, GATEWAY_KEY.encode() if gateway else None)
        return desk if gateway else desk.sign_in()

    return make

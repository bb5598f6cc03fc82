"""The `sbu` commands and `sbu serve` talk to the Prefect server they were pointed at, never to a
temporary one of Prefect's own making."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.base import ServerType
from prefect.context import refresh_global_settings_context
from prefect.settings import PREFECT_API_URL

from models.settings import Settings
from tasks.prefect.connection import api_url_marker, prefect_client

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def environment_restored() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    refresh_global_settings_context()


@pytest.mark.usefixtures("environment_restored")
def test_a_command_finds_the_server_serve_started_and_no_other(prefect_api_url: str, tmp_path: Path) -> None:
    # As `sbu decide` meets it beside `sbu serve` on the embedded default: Prefect was imported
    # before the URL was known (no PREFECT_API_URL in the environment), and the URL is in the
    # marker file serve wrote. Prefect's client used to find no URL, start a temporary server of
    # its own on the same database, and take about 25 s doing it.
    os.environ.pop("PREFECT_API_URL", None)
    refresh_global_settings_context()
    assert PREFECT_API_URL.value() is None
    settings = Settings(data_dir=tmp_path)
    api_url_marker(settings).parent.mkdir(parents=True)
    api_url_marker(settings).write_text(prefect_api_url)

    with prefect_client(settings) as client:
        assert client is not None
        assert client.server_type is not ServerType.EPHEMERAL
        assert str(client.api_url).rstrip("/") == prefect_api_url

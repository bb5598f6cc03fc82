"""A real Prefect server for the tests of the Prefect seam, started once for the package, through
the same launcher `sbu serve` uses."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deployments.local import free_port
from deployments.serve import local_prefect_server
from models.settings import Settings
from tasks.prefect.hooks import refresh_settings


@pytest.fixture(scope="package")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prefect-server")
    with local_prefect_server(Settings(data_dir=home), port=free_port()) as url:
        yield url


@pytest.fixture
def prefect_pointed(prefect_api_url: str) -> Iterator[str]:
    """This process's Prefect pointed at the package's server, and put back afterwards."""
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = prefect_api_url
    refresh_settings()
    yield prefect_api_url
    if saved is None:
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ["PREFECT_API_URL"] = saved
    refresh_settings()

"""Finding the Prefect server and talking to it: the settings every process of ours gives
Prefect, the server's URL (from the environment or the marker file `sbu serve` writes), and a
client that is None when no server answers, so a change is never refused for want of Prefect."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from tasks.prefect import hooks

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prefect.client.orchestration import SyncPrefectClient

    from models.settings import Settings

# The most runs one request may read from the server `sbu serve` starts (its
# PREFECT_SERVER_API_DEFAULT_LIMIT; Prefect's default, 200, would make a sweep over 10,000 waiting
# cases fifty requests). A server started otherwise may refuse pages this large: see `reconcile`.
LARGE_PAGE = 5000

NO_SERVER_NOTE = ("note: no Prefect server is running (start one with `sbu serve`); the case store "
                  "has the change and the case's flow run will catch up when it starts")


def api_url_marker(settings: Settings) -> Path:
    """`sbu serve` writes the URL of the server it runs here, so other commands can find it."""
    return settings.data_dir / "prefect" / "api-url"


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's own settings for every process of ours: its home under the data directory, no
    telemetry, and results persisted so a replayed flow finds its tasks' results. In production,
    the shared credential every client must send (`prefect_server_environment` has the server's)."""
    home = (settings.data_dir / "prefect").resolve()
    production: dict[str, str] = {}
    if settings.production:
        assert settings.prefect_auth_string is not None  # the production profile requires it
        production = {
            "PREFECT_API_AUTH_STRING": settings.prefect_auth_string.get_secret_value(),
            # Our clients fetch a CSRF token when the server asks for one (Prefect's default, kept).
            "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
            "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
            "DO_NOT_TRACK": "1",
        }
    return production | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        # Flow logs (case references and step ids only) reach the dashboard.
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
    }


def prefect_server_environment(settings: Settings) -> dict[str, str]:
    """What the Prefect server `sbu serve` starts is given on top of `prefect_environment`. In
    production: basic auth with the shared credential, CSRF protection, CORS from the dashboard's
    origin only, and no telemetry (Prefect's defaults are no auth, no CSRF protection, CORS from
    anywhere and anonymous usage reports on start)."""
    if not settings.production:
        return {}
    assert settings.prefect_auth_string is not None
    return {
        "PREFECT_SERVER_API_AUTH_STRING": settings.prefect_auth_string.get_secret_value(),
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": settings.dashboard_origin,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_METRICS_ENABLED": "false",
    }


def discover_api_url(settings: Settings) -> str | None:
    explicit = os.environ.get("PREFECT_API_URL")
    if explicit:
        return explicit
    marker = api_url_marker(settings)
    if marker.is_file():
        return marker.read_text().strip() or None
    return None


def server_answers(url: str) -> bool:
    """Whether a Prefect server answers its health check at `url` (its API URL)."""
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def prefect_client(settings: Settings) -> Iterator[SyncPrefectClient | None]:
    """A client for the running server, or None when there is none (the store still has the
    change; `sbu serve` catches up on start)."""
    url = discover_api_url(settings)
    if url is None or not server_answers(url):
        yield None
        return
    for name, value in prefect_environment(settings).items():
        os.environ.setdefault(name, value)
    os.environ["PREFECT_API_URL"] = url
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() != url:
        prefect_rereads_environment()
    with get_client(sync_client=True) as client:
        yield client


def prefect_rereads_environment() -> None:
    """Make Prefect in this process see what we have just put in the environment.

    Prefect reads its settings from the environment once, when it is first imported, and our
    modules import it before the API URL is known (a URL `sbu serve` found in its marker file, or a
    server it has just started). A client that finds no API URL does not fail: it starts a
    temporary Prefect server of its own, on the same SQLite database as the real one (PREFECT_HOME
    is the same), for as long as the process lives. That cost every `sbu` command about 25 s, and
    gave `sbu serve` a second server, with its own services, writing to the same file."""
    hooks.refresh_settings()


def not_told(error: Exception) -> str:
    """The note for the user when Prefect could not be told of a change the store committed."""
    from prefect.exceptions import ObjectNotFound

    if isinstance(error, ObjectNotFound):
        return ("note: the Prefect server has no deployments yet (start `sbu serve`); the case "
                "store has the change and the case's flow run will catch up when it starts")
    return (f"note: Prefect could not be told ({error.__class__.__name__}); the case store has "
            "the change and the reconciliation sweep of `sbu serve` will catch up")


# Deployment ids by server and name, for the process's lifetime: a deployment keeps its id for as
# long as the server's database does, and a sweep or a change would otherwise ask for it each time.
_DEPLOYMENT_IDS: dict[tuple[str, str], UUID] = {}


def deployment_id(client: SyncPrefectClient, name: str) -> UUID:
    """The id of the deployment `name` (`flow-name/deployment-name`), asked of the server once."""
    key = (str(client.api_url), name)
    found = _DEPLOYMENT_IDS.get(key)
    if found is None:
        found = _DEPLOYMENT_IDS[key] = client.read_deployment_by_name(name).id
    return found


def forget_deployment_ids() -> None:
    """Ask the server again next time: after it said a cached deployment does not exist (its
    database replaced under a running serve, say)."""
    _DEPLOYMENT_IDS.clear()

"""Where a secret could be written down instead of given in the environment: the files Prefect
reads its own settings from (`.env`, `prefect.toml` and `[tool.prefect]` of `pyproject.toml` in the
working directory, and the profiles file under PREFECT_HOME). In production every secret must come
from the environment or a Prefect Secret block (`models.settings.refuse_file_secrets` says which
settings hold one); `refuse_secrets_in_files` is called where a process starts."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.settings import Settings, refuse_file_secrets


def _flattened(table: Mapping[str, Any], prefix: str) -> dict[str, object]:
    """A nested Prefect TOML table as Prefect's setting names: [server.api] auth_string is
    PREFECT_SERVER_API_AUTH_STRING."""
    names: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}_{key}".upper()
        if isinstance(value, dict):
            names.update(_flattened(value, name))
        else:
            names[name] = value
    return names


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _dotenv(path: Path) -> dict[str, object]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    found: dict[str, object] = {}
    for line in lines:
        name, equals, value = line.removeprefix("export ").partition("=")
        if equals and name.strip() and not name.lstrip().startswith("#"):
            found[name.strip()] = value.strip().strip("'\"")
    return found


def file_settings(*, cwd: Path, prefect_home: Path,
                  environ: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Every setting written in a file Prefect (or a `.env` loader) would read, by file."""
    profiles = Path(environ.get("PREFECT_PROFILES_PATH") or prefect_home / "profiles.toml")
    sources = {
        str(cwd / ".env"): _dotenv(cwd / ".env"),
        str(cwd / "prefect.toml"): _flattened(_toml(cwd / "prefect.toml"), "PREFECT"),
        f"{cwd / 'pyproject.toml'} [tool.prefect]":
            _flattened(_toml(cwd / "pyproject.toml").get("tool", {}).get("prefect", {}), "PREFECT"),
    }
    for name, profile in _toml(profiles).get("profiles", {}).items():
        if isinstance(profile, dict):
            sources[f"{profiles} [profiles.{name}]"] = dict(profile)
    return sources


def refuse_secrets_in_files(settings: Settings, *, cwd: Path | None = None,
                            environ: Mapping[str, str] | None = None) -> None:
    """In production, refuse to start when a secret is written in one of those files (the error
    names the setting and the file, never the value)."""
    if not settings.production:
        return
    env = os.environ if environ is None else environ
    home = Path(env.get("PREFECT_HOME") or settings.data_dir / "prefect")
    refuse_file_secrets(file_settings(cwd=cwd or Path.cwd(), prefect_home=home, environ=env))

"""The production profile (SBU_PROFILE=production): one setting turns on Prefect's basic auth and
CSRF protection, turns telemetry off, restricts CORS, and takes secrets only from the environment.
Each Prefect setting is checked by Prefect's own settings model reading the environment we give it,
so a misspelt name fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import SbuError
from models.settings import Profile, Settings, load_settings
from tasks.prefect.connection import prefect_environment, prefect_server_environment
from tasks.secret_sources import refuse_secrets_in_files

AUTH = "sbu:correct-horse-battery"
GATEWAY_KEY = "a-long-random-gateway-key"


def production_env(tmp_path: Path, **more: str) -> dict[str, str]:
    people = tmp_path / "people.toml"
    people.write_text('[people.jbrook]\nname = "Jo Brook"\nroles = ["sbu"]\n')
    return {"SBU_PROFILE": "production", "SBU_DATA_DIR": str(tmp_path / "var"),
            "SBU_PEOPLE_FILE": str(people), "SBU_PREFECT_AUTH_STRING": AUTH,
            "SBU_GATEWAY_KEY": GATEWAY_KEY, "SBU_DASHBOARD_URL": "https://sbu.partnership.example/runs",
            **more}


def prefect_reads(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> object:
    """Prefect's settings as a process started with `env` would read them."""
    from prefect.settings import Settings as PrefectSettings

    for name in [n for n in __import__("os").environ if n.startswith("PREFECT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return PrefectSettings()


def test_production_turns_on_each_prefect_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(environ=production_env(tmp_path))
    assert settings.profile is Profile.PRODUCTION
    server_env = {**prefect_environment(settings), **prefect_server_environment(settings)}
    prefect = prefect_reads(monkeypatch, server_env)
    api = prefect.server.api  # type: ignore[attr-defined]
    assert api.auth_string.get_secret_value() == AUTH
    assert prefect.api.auth_string.get_secret_value() == AUTH  # type: ignore[attr-defined]
    assert api.csrf_protection_enabled is True
    assert prefect.client.csrf_support_enabled is True  # type: ignore[attr-defined]
    assert api.cors_allowed_origins == "https://sbu.partnership.example"
    assert prefect.server.analytics_enabled is False  # type: ignore[attr-defined]
    assert prefect.server.metrics_enabled is False  # type: ignore[attr-defined]
    assert prefect.telemetry.enable_resource_metrics is False  # type: ignore[attr-defined]
    # Flow and CLI processes get the client's credential, never the server's own setting.
    assert "PREFECT_SERVER_API_AUTH_STRING" not in prefect_environment(settings)


def test_development_leaves_prefect_open_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    assert prefect_server_environment(settings) == {}
    prefect = prefect_reads(monkeypatch, prefect_environment(settings))
    assert prefect.server.api.auth_string is None  # type: ignore[attr-defined]
    assert prefect.server.api.csrf_protection_enabled is False  # type: ignore[attr-defined]
    assert prefect.server.analytics_enabled is False  # type: ignore[attr-defined]  # as ever


@pytest.mark.parametrize("missing", ["SBU_PEOPLE_FILE", "SBU_PREFECT_AUTH_STRING", "SBU_GATEWAY_KEY"])
def test_production_needs_the_directory_and_both_secrets(tmp_path: Path, missing: str) -> None:
    env = production_env(tmp_path)
    del env[missing]
    with pytest.raises(SbuError, match=f"the production profile needs {missing}"):
        load_settings(environ=env)


def test_a_secret_given_in_code_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(SbuError) as refused:
        load_settings(environ=production_env(tmp_path), smtp_password="hunter2-secret")
    assert "smtp_password" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    # From the environment it is taken, and never shown.
    settings = load_settings(environ=production_env(tmp_path, SBU_SMTP_PASSWORD="hunter2-secret"))
    assert settings.smtp_password is not None
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(("file", "text", "named"), [
    (".env", "SBU_SMTP_PASSWORD=hunter2-secret\n", "SBU_SMTP_PASSWORD"),
    (".env", "export PREFECT_API_AUTH_STRING='sbu:hunter2-secret'\n", "PREFECT_API_AUTH_STRING"),
    ("prefect.toml", '[server.api]\nauth_string = "sbu:hunter2-secret"\n', "PREFECT_SERVER_API_AUTH_STRING"),
    ("prefect.toml", '[server.database]\nconnection_url = "postgresql+asyncpg://p:hunter2-secret@db/p"\n',
     "PREFECT_SERVER_DATABASE_CONNECTION_URL"),
    ("pyproject.toml", '[tool.prefect.api]\nkey = "hunter2-secret"\n', "PREFECT_API_KEY"),
    ("var/prefect/profiles.toml", '[profiles.local]\nPREFECT_API_DATABASE_PASSWORD = "hunter2-secret"\n',
     "PREFECT_API_DATABASE_PASSWORD"),
])
def test_a_secret_in_a_file_refuses_the_start(tmp_path: Path, file: str, text: str, named: str) -> None:
    settings = load_settings(environ=production_env(tmp_path))
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text(text)
    with pytest.raises(SbuError) as refused:
        refuse_secrets_in_files(settings, cwd=tmp_path, environ={})
    message = str(refused.value)
    assert named in message
    assert file.split("/")[-1] in message
    assert "hunter2" not in message


def test_settings_without_secrets_in_files_start(tmp_path: Path) -> None:
    settings = load_settings(environ=production_env(tmp_path))
    (tmp_path / ".env").write_text("SBU_SMTP_HOST=mail.example\n")
    (tmp_path / "prefect.toml").write_text(
        '[server.database]\nconnection_url = "postgresql+asyncpg://p@db/p"\n[logging]\nlevel = "INFO"\n')
    refuse_secrets_in_files(settings, cwd=tmp_path, environ={})
    # Outside production the files are not Prefect's business of ours: nothing is checked.
    (tmp_path / ".env").write_text("SBU_SMTP_PASSWORD=hunter2-secret\n")
    refuse_secrets_in_files(Settings(data_dir=tmp_path), cwd=tmp_path, environ={})

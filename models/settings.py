"""All configuration in one validated object, read from `SBU_*` environment variables once, at the
edge (the CLI, the serve entry point, a flow run's process), and passed in from there. A test
builds its own `Settings(...)`, which reads no environment at all.

The environment is read by `load_settings` in a dozen lines rather than by pydantic-settings: the
same names (`SBU_DATA_DIR`, `SBU_CLOCKS__SIN_SUBMISSION_DAYS` for a nested field), validated by
the same model, at a third of the import cost that every `sbu` command pays.

The case clock is built here and nowhere else (`Settings.clock`); the working-day calendar is built
from these settings by `tasks.holiday_cache.calendar_for`, which adds the cached bank holidays."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from models.alerts import AlertPolicy
from models.clock import ScaledClock
from models.errors import SbuError, describe_validation_error
from models.review_policy import ReviewPolicy
from models.timetable import Clocks

# A module that adds processes to the registry (see `models.registry`): a dotted Python name.
_MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
ENV_PREFIX = "SBU_"
NESTED = "__"


class Profile(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


# The settings that hold a secret: in production each is taken from the environment only (or, for
# the SMTP password, a Prefect Secret block), never from a file (`production_problems`).
SECRET_SETTINGS = ("smtp_password", "prefect_auth_string", "gateway_key", "database_url")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # One setting, SBU_PROFILE=production, turns on everything a live partnership needs: Prefect's
    # basic auth and CSRF protection, no telemetry, CORS only from the dashboard's own origin,
    # secrets from the environment only, and the people directory required
    # (`tasks.prefect.connection.prefect_environment`, `production_problems`).
    profile: Profile = Profile.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir if unset.")
    partnership: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    case_ref_prefix: str = Field("SR", pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    closure_days: tuple[date, ...] = ()
    clocks: Clocks = Clocks()
    alerts: AlertPolicy = AlertPolicy()

    # The case clock: case time runs `time_scale` times faster than wall time from `time_epoch`.
    time_scale: float = Field(1.0, gt=0, le=1_000_000)
    time_epoch: AwareDatetime | None = None
    # The case time at the epoch (default: the epoch itself), for a demo or test on chosen dates.
    time_start: AwareDatetime | None = None

    # Email (see tasks.mail).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # A Prefect Secret block holding the SMTP password, read when mail is sent (instead of the above).
    smtp_password_block: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    smtp_security: str = Field("none", pattern=r"^(starttls|tls|none)$")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # The outbox's waits, in wall-clock seconds: the first retry after a failed delivery (doubling
    # after each failure, up to the maximum), and the lease a sender holds on a message, after
    # which a message whose sender died mid-delivery is sent again (same Message-ID).
    outbox_retry_seconds: float = Field(30.0, gt=0, le=3600)
    outbox_max_retry_seconds: float = Field(3600.0, gt=0, le=86400)
    outbox_lease_seconds: float = Field(300.0, gt=0, le=3600)
    mail_from: str = "sbu-pipeline@localhost"
    directory_file: Path | None = None
    # The partnership's people and their roles (`tasks.people`): who may record which step. None
    # lets anyone record anything (the demo, development); the production profile requires it.
    people_file: Path | None = None
    dashboard_url: str = "http://127.0.0.1:4200"

    # Prefect: how often a served deployment looks for runs to start or resume. Prefect's default
    # (about 10 s) would make a recorded decision take 10 to 15 s to act.
    runner_poll_seconds: float = Field(0.25, gt=0, le=60)
    # How often `sbu serve` tells Prefect what the store committed while Prefect could not be told
    # (a run for a process just started, a timer): store reads only when there is nothing to do.
    catch_up_seconds: float = Field(15.0, gt=0, le=3600)
    prefect_port: int = Field(4200, ge=1, le=65535)
    # Prefect's one shared basic-auth credential ("user:password"), given to the server `sbu serve`
    # starts and to every client of ours. Required in production.
    prefect_auth_string: SecretStr | None = None

    # The sign-in gateway (`sbu gateway`, deployments/gateway.py) between the authenticating
    # reverse proxy and Prefect: the header the proxy names the user in, the addresses the header is
    # trusted from, and the key the gateway seals `recorded_by` with (the flows check the seal).
    gateway_key: SecretStr | None = None
    gateway_user_header: str = Field("X-Forwarded-User", pattern=r"^[A-Za-z0-9-]{1,64}$")
    gateway_trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(4300, ge=1, le=65535)
    # Where the gateway finds the officers' desk (`sbu web`), e.g. http://127.0.0.1:4400: the
    # gateway then sends every request under /desk there, with the signed-in user sealed into it.
    gateway_desk_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$")
    # The officers' desk (`sbu web`, deployments/web): where it listens.
    desk_host: str = "127.0.0.1"
    desk_port: int = Field(4400, ge=1, le=65535)
    # The IMR template's sections, the Rapid Review meeting's usual time and place.
    reviews: ReviewPolicy = ReviewPolicy()

    # Modules that register processes beyond the built-in ones (a partnership's local process, or
    # a test's toy process): each is imported and its `PROCESSES` added to the registry.
    process_modules: tuple[str, ...] = ()

    @field_validator("closure_days", "process_modules", "gateway_trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("process_modules")
    @classmethod
    def _module_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(re.match(_MODULE_NAME, name) for name in value):
            raise ValueError("each entry must be a dotted module name")
        return value

    @model_validator(mode="after")
    def _epoch_with_scale(self) -> Settings:
        if (self.time_scale != 1.0 or self.time_start is not None) and self.time_epoch is None:
            raise ValueError("SBU_TIME_EPOCH must be set with SBU_TIME_SCALE or SBU_TIME_START")
        return self

    @model_validator(mode="after")
    def _production(self) -> Settings:
        if self.profile is Profile.PRODUCTION:
            missing = [name for name in ("people_file", "prefect_auth_string", "gateway_key")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError("the production profile needs " + ", ".join(
                    f"{ENV_PREFIX}{name.upper()}" for name in missing))
            auth = self.prefect_auth_string
            if auth is not None and ":" not in auth.get_secret_value():
                raise ValueError(f"{ENV_PREFIX}PREFECT_AUTH_STRING must be user:password")
        return self

    @property
    def production(self) -> bool:
        return self.profile is Profile.PRODUCTION

    @property
    def dashboard_origin(self) -> str:
        """The dashboard's origin (scheme, host and port): the one origin CORS allows in production."""
        parts = urlsplit(self.dashboard_url)
        return f"{parts.scheme}://{parts.netloc}"

    def clock(self) -> ScaledClock:
        return ScaledClock(scale=self.time_scale, epoch=self.time_epoch, start=self.time_start)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sbu.db').resolve()}"


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings named in `environ`: `SBU_NAME` for a field (any case), `SBU_GROUP__NAME` for a
    field of a nested group. Names no field has are left for the model to ignore."""
    values: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.upper().startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX):].lower().split(NESTED)
        target = values
        for part in path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                break
            target = nested
        else:
            target[path[-1]] = value
    return values


def load_settings(*, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment (or `environ`); a bad value is an SbuError naming the
    setting, never its value. In production a secret given any other way (`overrides`) is refused."""
    values = environment_values(os.environ if environ is None else environ)
    try:
        settings = Settings.model_validate({**values, **overrides})
    except ValidationError as error:
        raise SbuError(f"settings: {describe_validation_error(error)}") from None
    if settings.production:
        refuse_file_secrets({"settings given in code": overrides})
    return settings


def url_has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def is_secret(name: str, value: object) -> bool:
    """Whether setting `name` (ours, `smtp_password`, or Prefect's, `PREFECT_API_AUTH_STRING`, in
    any case) given `value` holds a secret: a password, a credential, or a URL with a password."""
    key = name.lower().removeprefix(ENV_PREFIX.lower()).removeprefix("prefect_")
    if key.endswith(("connection_url", "database_url")):
        return isinstance(value, str) and url_has_password(value)
    return value is not None and (key in SECRET_SETTINGS or key.endswith(
        ("auth_string", "password", "api_key", "_key")) or key == "key")


def refuse_file_secrets(sources: Mapping[str, Mapping[str, object]]) -> None:
    """Refuse (production) a secret found in a file or given in code: `sources` maps where each
    setting was found to the settings found there. The error names the setting and the place,
    never the value."""
    for source, found in sources.items():
        for name, value in found.items():
            if is_secret(name, value):
                raise SbuError(f"production: the secret setting {name} is given in {source}; give it "
                               "in the environment (or, for the SMTP password, a Prefect Secret block) "
                               "and remove it there")

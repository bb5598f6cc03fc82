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
from pathlib import Path
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
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


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

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
    smtp_password: str | None = None
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
    dashboard_url: str = "http://127.0.0.1:4200"

    # Prefect: how often a served deployment looks for runs to start or resume. Prefect's default
    # (about 10 s) would make a recorded decision take 10 to 15 s to act.
    runner_poll_seconds: float = Field(0.25, gt=0, le=60)
    # How often `sbu serve` tells Prefect what the store committed while Prefect could not be told
    # (a run for a process just started, a timer): store reads only when there is nothing to do.
    catch_up_seconds: float = Field(15.0, gt=0, le=3600)
    prefect_port: int = Field(4200, ge=1, le=65535)
    # The IMR template's sections, the Rapid Review meeting's usual time and place.
    reviews: ReviewPolicy = ReviewPolicy()

    # Modules that register processes beyond the built-in ones (a partnership's local process, or
    # a test's toy process): each is imported and its `PROCESSES` added to the registry.
    process_modules: tuple[str, ...] = ()

    @field_validator("closure_days", "process_modules", mode="before")
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
    setting, never its value."""
    values = environment_values(os.environ if environ is None else environ)
    try:
        return Settings.model_validate({**values, **overrides})
    except ValidationError as error:
        raise SbuError(f"settings: {describe_validation_error(error)}") from None

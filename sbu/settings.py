"""All configuration in one validated object, read from `SBU_*` environment variables once, at the
edge (the CLI, the serve entry point, a test), and passed in from there."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.alerts import AlertPolicy
from models.calendar import WorkingDayCalendar
from models.forms import describe_validation_error
from models.timetable import Clocks
from sbu.clock import ScaledClock
from sbu.errors import SbuError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SBU_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir if unset.")
    partnership: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    case_ref_prefix: str = Field("SR", pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    closure_days: Annotated[tuple[date, ...], NoDecode] = ()
    clocks: Clocks = Clocks()
    alerts: AlertPolicy = AlertPolicy()

    # The case clock: case time runs `time_scale` times faster than wall time from `time_epoch`.
    time_scale: float = Field(1.0, gt=0, le=1_000_000)
    time_epoch: AwareDatetime | None = None
    # The case time at the epoch (default: the epoch itself), for a demo or test on chosen dates.
    time_start: AwareDatetime | None = None

    # Email (see sbu.mail).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str = Field("none", pattern=r"^(starttls|tls|none)$")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=300)
    mail_from: str = "sbu-pipeline@localhost"
    directory_file: Path | None = None
    dashboard_url: str = "http://127.0.0.1:4200"

    # Prefect: how often a served deployment looks for runs to start or resume. Prefect's default
    # (about 10 s) would make a recorded decision take 10 to 15 s to act.
    runner_poll_seconds: float = Field(0.25, gt=0, le=60)
    prefect_port: int = Field(4200, ge=1, le=65535)
    # The Rapid Review meeting's default start time and length, London time.
    rr_meeting_duration_minutes: int = Field(120, ge=15, le=480)

    @field_validator("closure_days", mode="before")
    @classmethod
    def _split_closure_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
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

    def calendar(self) -> WorkingDayCalendar:
        from sbu.holiday_cache import load_bank_holidays

        cache_dir = self.data_dir / "cache"
        return WorkingDayCalendar(closure_days=self.closure_days,
                                  table=lambda: load_bank_holidays(cache_dir))



def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; a bad value is an SbuError naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SbuError(f"settings: {describe_validation_error(error)}") from None

"""Who receives email, by role and by agency, from one validated file.

The file is TOML with two tables, `[roles]` (every `models.enums.Role`) and `[agencies]` (every
`models.enums.Agency`), each mapping a key to one plain address such as `dsp.police@force.example`.
Every role and every agency must be present: an information request must never be dropped at run
time because a lead is missing, so a gap is refused at start-up instead. Errors name the key, never
the value (a mistyped address may well be a person's own).

Addresses are plain `local@domain`, from a conservative character set without spaces, commas, angle
brackets, quotes or line breaks, so an address can never add a header or a second recipient.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from models.enums import Agency, Role
from models.errors import SbuError
from tasks.toml_files import read_toml

DEFAULT_DIRECTORY_FILE = Path(__file__).with_name("default_directory.toml")

# RFC 5321 allows far more; this is the subset real organisational mailboxes use, chosen so that
# nothing in an address can be read as header syntax (no CR/LF, no ',', '<', '>', '"', ';', ':').
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})*")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_MAX_ADDRESS_LENGTH = 254


def is_valid_address(value: str) -> bool:
    """True when `value` is one plain address this system will send to or from."""
    return len(value) <= _MAX_ADDRESS_LENGTH and _ADDRESS.fullmatch(value) is not None


def is_valid_domain(value: str) -> bool:
    """True when `value` is a plain DNS domain name (the right-hand side of an address)."""
    return len(value) <= _MAX_ADDRESS_LENGTH and _DOMAIN.fullmatch(value) is not None


def _check_address(value: str) -> str:
    if not is_valid_address(value):
        # The message deliberately omits the value: pydantic would otherwise not echo it either.
        raise ValueError("not a plain email address (local@domain)")
    return value


Address = Annotated[str, AfterValidator(_check_address)]

# Every role with an address of its own; `Role.AGENCY` stands for the agency an item is owed by,
# whose lead is found under [agencies].
ADDRESSED_ROLES = tuple(role for role in Role if role is not Role.AGENCY)


class Directory(BaseModel):
    """Addresses by role and by agency. Built by `load_directory`; frozen once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    roles: dict[Role, Address]
    agencies: dict[Agency, Address]

    @model_validator(mode="after")
    def _complete(self) -> Directory:
        missing = [role.value for role in ADDRESSED_ROLES if role not in self.roles]
        if missing:
            raise ValueError(f"roles: missing {', '.join(missing)}")
        missing = [agency.value for agency in Agency if agency not in self.agencies]
        if missing:
            raise ValueError(f"agencies: missing {', '.join(missing)}")
        return self

    def address(self, role: Role) -> str:
        """The address for `role`."""
        return self.roles[role]

    def agency_lead(self, agency: Agency) -> str:
        """The designated lead's address for `agency`."""
        return self.agencies[agency]

    @property
    def dsps(self) -> tuple[str, str, str]:
        """The three Delegated Safeguarding Partners: local authority, health, police."""
        return (self.roles[Role.DSP_LA], self.roles[Role.DSP_HEALTH], self.roles[Role.DSP_POLICE])

    @property
    def fallback(self) -> str:
        """Where delivery failures are reported."""
        return self.roles[Role.FALLBACK]


def parse_directory(data: Any, *, source: str = "directory") -> Directory:
    """Validate a directory given as a mapping (a parsed TOML file).

    Unknown tables, roles and agencies and bad addresses are refused with an `SbuError` that names
    the key and never the value.
    """
    if not isinstance(data, dict):
        raise SbuError(f"{source}: expected the tables [roles] and [agencies]")
    unknown = sorted(set(data) - {"roles", "agencies"})
    if unknown:
        raise SbuError(f"{source}: unknown table {_key(unknown[0])}; expected [roles] and [agencies]")
    for table, allowed in (("roles", {r.value for r in ADDRESSED_ROLES}),
                           ("agencies", {a.value for a in Agency})):
        entries = data.get(table)
        if not isinstance(entries, dict):
            raise SbuError(f"{source}: [{table}] is missing or not a table")
        for key, value in entries.items():
            if key not in allowed:
                raise SbuError(f"{source}: unknown {table[:-1] if table == 'roles' else 'agency'} "
                               f"{_key(key)} in [{table}]; known: {', '.join(sorted(allowed))}")
            if not isinstance(value, str) or not is_valid_address(value):
                raise SbuError(f"{source}: {table}.{key} is not a plain email address (local@domain)")
    try:
        return Directory.model_validate(data)
    except ValidationError as error:
        # Reached only for completeness errors: per-key problems were reported above.
        messages = [str(item["msg"]).removeprefix("Value error, ")
                    for item in error.errors(include_input=False, include_url=False)]
        raise SbuError(f"{source}: {'; '.join(messages)}") from None


def load_directory(path: Path | None) -> Directory:
    """Read and validate the directory file; `None` gives the packaged demo directory.

    Called at start-up (the CLI, the serve entry point) so that a bad file stops the process with
    one clear line rather than failing a case change later.
    """
    target = path if path is not None else DEFAULT_DIRECTORY_FILE
    source = f"directory {target.name}"
    return parse_directory(read_toml(target, source), source=source)


_PRINTABLE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _key(key: object) -> str:
    # A key is configuration, not personal data, but it is only echoed when it looks like one.
    text = str(key)
    return f"'{text}'" if _PRINTABLE_KEY.fullmatch(text) else "<unprintable key>"

"""The partnership's directory of people (`models.access.People`), read from one TOML file.

    [people.dlee]
    name = "Dana Lee"
    roles = ["dsp-la"]

    [people.jbrook]
    name = "Jo Brook"
    roles = ["sbu"]
    deputy_for = ["dsp-police"]     # may sign for the police DSP, marked as a deputy

The table key is the person's handle: what the sign-in proxy passes on, or `sbu --by`. Errors
name the handle (when it looks like one) and the key, never a value: a mistyped name is a person's.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

from models.access import People, Person, is_role
from models.enums import DSP_ROLES
from models.errors import SbuError
from tasks.toml_files import read_toml

_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,79}$")
_DSP_VALUES = frozenset(role.value for role in DSP_ROLES)


def parse_people(data: Any, *, source: str = "people", roles: frozenset[str] = frozenset()) -> People:
    """Validate the `[people]` table of a parsed TOML file; `roles` are those the registered
    processes declare of their own (`Registry.roles`), beside the procedure's."""
    table = data.get("people") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise SbuError(f"{source}: expected a [people] table with at least one person")
    people: list[Person] = []
    for handle, entry in table.items():
        if not _HANDLE.fullmatch(handle):
            raise SbuError(f"{source}: a handle in [people] is not 1 to 80 letters, digits, "
                           "'.', '_', '@' or '-'")
        where = f"{source}: people.{handle}"
        if not isinstance(entry, dict) or set(entry) - {"name", "roles", "deputy_for"}:
            raise SbuError(f"{where}: expected only name, roles and deputy_for")
        name, held, deputy_for = entry.get("name"), entry.get("roles", []), entry.get("deputy_for", [])
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80 or "\n" in name or "\r" in name:
            raise SbuError(f"{where}.name must be a name of 1 to 80 characters on one line")
        checks = (("roles", held, partial(is_role, declared=roles)),
                  ("deputy_for", deputy_for, _DSP_VALUES.__contains__))
        for key, values, allowed in checks:
            if not isinstance(values, list) or not all(isinstance(v, str) and allowed(v) for v in values):
                raise SbuError(f"{where}.{key}: each entry must be a known role"
                               + (" (a DSP role)" if key == "deputy_for" else ""))
        if not held and not deputy_for:
            raise SbuError(f"{where}: holds no role")
        people.append(Person(handle=handle, name=" ".join(name.split()), roles=frozenset(held),
                             deputy_for=frozenset(deputy_for)))
    return People.of(people)


def load_people(path: Path, *, roles: frozenset[str] = frozenset()) -> People:
    """Read and validate the people file; an SbuError names what is wrong, never a value. `roles`:
    as for `parse_people`."""
    source = f"people file {path.name}"
    return parse_people(read_toml(path, source), source=source, roles=roles)

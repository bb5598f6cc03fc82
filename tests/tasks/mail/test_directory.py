"""The directory of recipients: complete, plain addresses only, and errors that name the key but
never the value."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from models.enums import Agency, Role
from models.errors import SbuError
from tasks.mail.directory import (
    ADDRESSED_ROLES,
    DEFAULT_DIRECTORY_FILE,
    is_valid_address,
    load_directory,
    parse_directory,
)


def _sample() -> dict[str, Any]:
    with DEFAULT_DIRECTORY_FILE.open("rb") as handle:
        return tomllib.load(handle)


def test_the_packaged_directory_names_every_role_and_agency() -> None:
    directory = load_directory(None)
    # `Role.AGENCY` stands for the agency an item is owed by: it has no address of its own.
    assert set(directory.roles) == set(ADDRESSED_ROLES) == set(Role) - {Role.AGENCY}
    assert set(directory.agencies) == set(Agency)
    assert all(address.endswith(".example") for address in (*directory.roles.values(),
                                                            *directory.agencies.values()))
    assert len(set(directory.dsps)) == 3


def test_a_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "directory.toml"
    path.write_bytes(DEFAULT_DIRECTORY_FILE.read_bytes())
    assert load_directory(path) == load_directory(None)


@pytest.mark.parametrize(("table", "key"), [("roles", "treasurer"), ("agencies", "fire-service")])
def test_an_unknown_key_is_refused_by_name(table: str, key: str) -> None:
    data = _sample()
    data[table][key] = "someone@partnership.example"
    with pytest.raises(SbuError, match=f"unknown .*'{key}'"):
        parse_directory(data)


def test_an_unknown_key_that_is_not_a_plain_name_is_not_echoed() -> None:
    data = _sample()
    data["roles"]["treasurer\n"] = "someone@partnership.example"
    with pytest.raises(SbuError, match="unknown role <unprintable key>") as caught:
        parse_directory(data)
    assert "treasurer" not in str(caught.value)


@pytest.mark.parametrize("bad", [
    "Jane Marker <jane@x.example>", "jane.marker@", "jane marker@x.example",
    "jane@x.example\r\nBcc: spy@evil.example", "jane@x.example,spy@evil.example", "",
])
def test_a_bad_address_is_refused_naming_the_key_never_the_value(bad: str) -> None:
    data = _sample()
    data["roles"]["dsp-police"] = bad
    with pytest.raises(SbuError) as caught:
        parse_directory(data)
    assert "roles.dsp-police" in str(caught.value)
    assert "marker" not in str(caught.value)
    assert "evil" not in str(caught.value)


def test_a_missing_role_or_agency_is_refused() -> None:
    data = _sample()
    del data["roles"]["fallback"]
    with pytest.raises(SbuError, match="missing fallback"):
        parse_directory(data)
    data = _sample()
    del data["agencies"]["housing"]
    with pytest.raises(SbuError, match="missing housing"):
        parse_directory(data)


def test_an_unknown_table_and_broken_files_are_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(_sample())
    data["people"] = {"x": "y"}
    with pytest.raises(SbuError, match="unknown table 'people'"):
        parse_directory(data)
    broken = tmp_path / "broken.toml"
    broken.write_text("[roles\nsecret = 'Jane Marker'\n")
    with pytest.raises(SbuError, match="not valid TOML") as caught:
        load_directory(broken)
    assert "Jane" not in str(caught.value)
    with pytest.raises(SbuError, match="file not found"):
        load_directory(tmp_path / "absent.toml")


def test_address_rules() -> None:
    assert is_valid_address("dsp.police@force.example")
    assert is_valid_address("a+b@x-y.example")
    assert not is_valid_address("a@b@c.example")
    assert not is_valid_address("a@-b.example")
    assert not is_valid_address("a\n@b.example")

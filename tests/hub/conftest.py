"""Fixtures for hub tests: a real mosquitto with mutual TLS (`broker`), the MQTT JSON Schemas
(`schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from broker import Broker  # tests/broker.py (tests/ is on sys.path via tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "docs" / "mqtt" / "schemas"
COUNTY = "test-county"
HUBS = ("hub-a", "hub-b")


class Schemas:
    """The contract's JSON Schemas, cross-file references resolved from the files themselves."""

    def __init__(self, directory: Path = SCHEMA_DIR):
        self.raw: dict[str, dict] = {}
        registry: Registry = Registry()
        for path in sorted(directory.glob("*.json")):
            contents = json.loads(path.read_text())
            Draft202012Validator.check_schema(contents)
            # The files have no $id: tools resolve "common.json" next to the file; use file URIs.
            contents = {**contents, "$id": path.as_uri()}
            self.raw[path.stem] = contents
            registry = registry.with_resource(
                path.as_uri(), Resource.from_contents(contents, DRAFT202012)
            )
        self._validators = {
            name: Draft202012Validator(s, registry=registry, format_checker=FormatChecker())
            for name, s in self.raw.items()
        }

    def errors(self, name: str, message) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in self._validators[name].iter_errors(message)
        ]

    def is_valid(self, name: str, message) -> bool:
        return self._validators[name].is_valid(message)

    def check(self, name: str, message) -> None:
        errors = self.errors(name, message)
        assert not errors, f"{name} schema refuses {message!r}: {errors}"


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    return Schemas()


@pytest.fixture
def broker():
    """A fresh mosquitto per test (~50 ms): no retained messages or sessions leak between tests."""
    b = Broker(county=COUNTY, hubs=HUBS)
    try:
        b.start()
        yield b
    finally:
        b.close()

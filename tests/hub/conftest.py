"""Fixtures for hub tests: a real mosquitto with mutual TLS (`broker`), the MQTT JSON Schemas
(`schemas`); and for the test families split across files, whose helpers live next to them
(store_testing.py, radio_testing.py, pipeline_testing.py, ...; importable since this folder is
put on sys.path here): `path` and `store`, `logs`, `home`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from broker import Broker  # tests/broker.py (tests/ is on sys.path via tests/conftest.py)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `from store_testing import ...`, like mpy_runtime from tests/
    sys.path.insert(0, str(HERE))
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


# -- the store (test_store_*.py) ----------------------------------------------------------------
# The hub's own modules are imported inside the fixtures: one of them failing to import then
# fails its tests, not every test in this folder.


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hub.db"


@pytest.fixture
def store(path: Path):
    from store_testing import HUB

    from hub.store import Store

    s = Store(path, hub_id=HUB)
    yield s
    s.close()


# -- the radio (test_radio_*.py) ----------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="carebeacon.radio")
    return caplog


# -- the hub core with a recorder (test_pipeline*.py) ----------------------------------------------
# (the end-to-end tests and test_inactivity_settings.py define a `home` of their own)


@pytest.fixture
def home(tmp_path, schemas):
    from pipeline_testing import Home

    h = Home(tmp_path, schemas)
    yield h
    h.store.close()

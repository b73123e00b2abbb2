"""The contract's documents: schema examples, docs/mqtt/asyncapi.yaml against the code and the
schema files, the JSON examples in docs/mqtt.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from contract_testing import C, H

from hub import contract

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "mqtt"


def test_schema_examples_validate(schemas):
    for name, schema in schemas.raw.items():
        for example in schema.get("examples", []):
            schemas.check(name, example)


def test_asyncapi_matches_code_and_schemas():
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.0")
    refs = set(re.findall(r"\./schemas/([\w-]+\.json)", (DOCS / "asyncapi.yaml").read_text()))
    on_disk = {p.name for p in (DOCS / "schemas").glob("*.json")} - {"common.json"}
    assert refs == on_disk
    addresses = {ch["address"] for ch in doc["channels"].values()}
    fmt = {"county": C, "hubId": H, "deviceId": "0000beef"}
    expected = {
        contract.event_topic(C, H),
        contract.state_topic(C, H),
        contract.availability_topic(C, H, 0xBEEF),
    }
    expected |= {contract.request_topic(C, H, k) for k in contract.REQUEST_KINDS}
    expected |= {contract.response_topic(C, H, k) for k in (*contract.REQUEST_KINDS, None)}
    assert {a.format(**fmt) for a in addresses} == expected
    for name, op in doc[
        "operations"
    ].items():  # every operation points at a channel and its messages
        channel = op["channel"]["$ref"].split("/")[-1]
        assert channel in doc["channels"], name
        for m in op.get("messages", []):
            assert m["$ref"].startswith(f"#/channels/{channel}/messages/"), name
    for ch in doc["channels"].values():
        for m in ch["messages"].values():
            target = m["$ref"].split("/")[-1]
            assert target in doc["components"]["messages"]


def test_doc_examples_validate(schemas):
    """Every ```json block in docs/mqtt.md preceded by <!-- schema: NAME --> validates."""
    text = (REPO / "docs" / "mqtt.md").read_text()
    blocks = re.findall(r"<!-- schema: ([\w-]+) -->\s*```json\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    for name, body in blocks:
        schemas.check(name, json.loads(body))

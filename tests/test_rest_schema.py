"""Schemathesis against the app's own OpenAPI document: no 5xx, no response outside the schema.

Operations are driven through ``APIOperation.as_strategy()`` with bounded
Hypothesis settings (schemathesis' lazy pytest fixture loader does not run
on this pytest), so the whole run stays within seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.nodes import make_config
from support.rest import prepared_node, rest_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    node = prepared_node(make_config(tmp_path_factory.mktemp("schema"), "fuzz", plugins=["rest_litestar"]))
    (node.store.root / "a.txt").write_bytes(b"hello world")
    node.store.scan()
    return schemathesis.openapi.from_asgi("/schema/openapi.json", rest_app(node))


def operations(schema) -> dict[str, object]:
    return {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in schema.get_all_operations())}


def test_every_contract_route_is_in_the_schema(api_schema):
    labels = set(operations(api_schema))
    assert {
        "GET /api/v1/status",
        "GET /api/v1/peers",
        "POST /api/v1/peers",
        "DELETE /api/v1/peers/{name}",
        "GET /api/v1/files",
        "GET /api/v1/files/{name}",
        "GET /api/v1/files/{name}/content",
        "PUT /api/v1/files/{name}/content",
        "GET /metrics",
    } <= labels


def test_api_conforms_to_its_schema(api_schema):
    ops = operations(api_schema)
    assert len(ops) >= 9
    for label, op in sorted(ops.items()):

        @given(case=op.as_strategy())
        @BOUNDED
        def run(case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Exception as err:
            raise AssertionError(f"{label}: {err}") from err

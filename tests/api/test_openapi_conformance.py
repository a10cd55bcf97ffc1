"""Schemathesis against the live server: the OpenAPI document says what the API does.

Every operation in ``/api/v1/openapi.json`` gets a bounded number of generated
requests (``EXAMPLES_PER_OPERATION``, the same cases for each role: anonymous,
customer, specialist, supervisor). Any 5xx, any status code the document does not
list for that operation, any content type or body that does not match its
documented schema fails the test, which then lists every failure it saw.

Bound: 36 operations x (6 valid + 3 invalid examples where an operation takes
input) x 4 roles, about 1,100 requests; 27-45 s on this machine (2 cores, shared).
Generation is derandomized (the same cases every run) and never shrinks, so the
time does not depend on what fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import ServerThread, http, seeded_database

EXAMPLES_PER_OPERATION = 6
# Invalid inputs (wrong types, missing fields, bad path ids): still never a 5xx,
# and whatever comes back is documented.
NEGATIVE_EXAMPLES_PER_OPERATION = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    with (
        seeded_database(request, "sqlite", tmp_path) as url,
        ServerThread(
            database_url=url,
            # Bad signatures are part of what is generated; a redirect secret makes
            # the endpoint check them rather than refuse unconfigured.
            redirect_secret="schemathesis-redirect-secret-0123456789",
        ) as server,
    ):
        yield server


def _token(base_url: str, role: str, subject: str) -> str:
    import json

    body = json.dumps({"role": role, "subject": subject}).encode()
    reply = http(base_url, "POST", "/api/v1/dev/tokens", body, {"Content-Type": "application/json"})
    assert reply.status == 201, reply
    token: str = reply.body["token"]
    return token


def _run_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    roles: dict[str, dict[str, str]],
    failures: list[str],
    mode: schemathesis.GenerationMode,
    examples_per_operation: int,
) -> int:
    sent = 0

    @settings(
        max_examples=examples_per_operation,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def examples(case: schemathesis.Case) -> None:
        nonlocal sent
        for role, headers in roles.items():
            sent += 1
            try:
                case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
            # Every failure is collected, not just the first (schemathesis raises an
            # exception group, which is not an Exception).
            except BaseExceptionGroup as exc:
                failures.append(f"{operation.label} ({mode.value}) as {role}: {str(exc)[:600]}")

    examples()
    return sent


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("requestBody") or raw.get("parameters") or operation.path_parameters)


def test_every_operation_conforms_to_the_document_for_every_role(live: ServerThread) -> None:
    document = http(live.base_url, "GET", "/api/v1/openapi.json").body
    schema = schemathesis.openapi.from_dict(document)
    tokens = {
        "customer": _token(live.base_url, "customer", "C1001"),
        "specialist": _token(live.base_url, "specialist", "S01"),
        "supervisor": _token(live.base_url, "supervisor", "SUP1"),
    }
    roles: dict[str, dict[str, str]] = {"anonymous": {}} | {
        role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()
    }
    failures: list[str] = []
    started = time.monotonic()
    operations = 0
    requests = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in (
            (schemathesis.GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION),
            (schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION),
        ):
            if mode is schemathesis.GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # nothing to make invalid
            requests += _run_operation(operation, live.base_url, roles, failures, mode, examples)
    elapsed = time.monotonic() - started
    print(
        f"schemathesis: {operations} operations, {requests} requests "
        f"(up to {EXAMPLES_PER_OPERATION} valid and {NEGATIVE_EXAMPLES_PER_OPERATION} invalid "
        f"examples per operation, each sent as {len(roles)} roles), "
        f"{elapsed:.1f} s, {len(failures)} failures"
    )
    assert operations >= 30, operations
    assert not failures, "\n\n".join(failures[:30])

"""Schema-driven fuzzing of every operation in /openapi.json (schemathesis), authenticated as a
platform operator over a seeded company: no answer is a 5xx, and every answer matches what the
document declares for it (status code, content type, body schema).

The CI run is bounded (FUZZ_EXAMPLES cases per operation and generation mode, no shrinking, a
fixed seed); `-m soak` runs many more with random seeds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app, db, runtime
from app.auth import issue_access_token
from app.config import Settings
from app.features.demo.seed import seed_demo
from app.features.identity import service as identity
from app.features.identity.models import User

CI_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
SOAK_EXAMPLES = int(os.environ.get("FUZZ_SOAK_EXAMPLES", "300"))


def _server_error(ctx: Any, response: Any, case: Any) -> bool:
    if response.status_code >= 500:
        raise AssertionError(f"{response.status_code}: {response.text[:500]}")
    return True


CHECKS = [_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzz_target(settings: Settings) -> Iterator[tuple[Any, dict[str, str]]]:
    """The app (no waiting for jobs: no worker runs here) and an operator's bearer header, over
    the demo company (values, people, compliments, ledger, store) so lists have items to validate.
    The voucher webhook has its secret, as in production: unsigned cases answer 401, not 503."""
    runtime.init(replace(settings, sync_wait_seconds=0.0, tremendous_webhook_secret="fuzz-webhook-secret"))
    app = create_app(runtime.settings())
    with db.session_scope() as session:
        demo = seed_demo(session)
        operator = User(company_id=demo.company_id, email="operator@valorize.demo", name="Operator")
        session.add(operator)
        session.flush()
        identity.assign_role(session, operator, "Super Admin")
        ids = operator.id, demo.company_id
    yield app, {"Authorization": f"Bearer {issue_access_token(*ids, ttl_seconds=24 * 3600)}"}
    runtime.init(settings)


def _fuzz_operation(
    operation: Any,
    headers: dict[str, str],
    examples: int,
    derandomize: bool,
    concrete: frozenset[tuple[str, str]] = frozenset(),
) -> list[str]:
    """Up to 3 failures of one operation, over positive and negative (schema-violating) cases.
    A case whose URL is another operation's concrete path (`/admin/redemptions/metrics` generated
    for `/admin/redemptions/{redemption_id}`) is that operation's, as OpenAPI and the router match
    concrete paths first: it is not sent as this one's."""
    found: list[str] = []
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        if (case.method.upper(), case.formatted_path) in concrete:
            return
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # collected: one report for every operation
            if len(found) < 3:
                found.append(f"{case.operation.label}: {type(exc).__name__}: {str(exc)[:800]}")

    run()
    return found


def _concrete_operations(schema: Any) -> frozenset[tuple[str, str]]:
    """(METHOD, path) of every operation whose path has no template variable."""
    return frozenset(
        (op.method.upper(), op.path)
        for op in (result.ok() for result in schema.get_all_operations())
        if "{" not in op.path
    )


def _fuzz(app: Any, headers: dict[str, str], examples: int, derandomize: bool) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    concrete = _concrete_operations(schema)
    for result in schema.get_all_operations():
        operations += 1
        failures.extend(_fuzz_operation(result.ok(), headers, examples, derandomize, concrete))
    return operations, failures


@pytest.mark.slow
def test_fuzz_every_operation(fuzz_target):
    app, headers = fuzz_target
    started = time.monotonic()
    operations, failures = _fuzz(app, headers, CI_EXAMPLES, derandomize=True)
    assert operations >= 80, operations
    assert not failures, "\n\n".join(failures)
    print(f"fuzzed {operations} operations in {time.monotonic() - started:.1f}s")


@pytest.mark.soak
def test_fuzz_every_operation_at_length(fuzz_target):
    app, headers = fuzz_target
    _, failures = _fuzz(app, headers, SOAK_EXAMPLES, derandomize=False)
    assert not failures, "\n\n".join(failures)

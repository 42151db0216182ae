"""Property-based fuzzing of the whole API from its own /openapi.json (schemathesis): valid
and invalid requests to every operation, as the admin, against the running suite. Nothing
may answer 5xx, and every answer must match what the document says about it."""

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

# Examples per operation and per mode (valid, invalid): the whole run stays within minutes.
EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_the_served_document_is_valid_json_schema_and_complete():
    """What the fuzzing below judges answers by must itself be right: money bounds that
    are strings, a missing documented error or a too strict Error would mislead it."""
    import gateway.service  # noqa: F401  (registers every route)
    from gateway import openapi

    document = openapi.build()
    assert "401" in document["paths"]["/auth/token"]["post"]["responses"]
    assert document["components"]["schemas"]["Error"].get("additionalProperties") is not False
    for schema in document["components"]["schemas"].values():
        for prop in schema.get("properties", {}).values():
            for bound in ("minimum", "maximum"):
                assert not isinstance(prop.get(bound), str), prop


@pytest.fixture
def no_rate_limits(monkeypatch):
    for name in ("RATE_LIMIT_PER_TOKEN", "RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setenv(name, "0")


def test_fuzzing_the_documented_api_finds_no_server_error_and_no_off_contract_answer(
    no_rate_limits, suite
):
    token = suite.as_admin().token
    schema = schemathesis.openapi.from_dict(suite.get("/openapi.json").json())
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter = Counter()
    failures: dict[str, str] = {}
    operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=2 * EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def fuzz(case):
            response = case.call(base_url=suite.base_url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # keep going: report every operation
            failures[operation.label] = _summary(exc)

    cases = sum(statuses.values())
    print(
        f"\nfuzzing: {operations} operations, {cases} cases, answers {dict(sorted(statuses.items()))}; "
        f"5xx {sum(n for s, n in statuses.items() if s >= 500)}, "
        f"operations with an off-contract answer {len(failures)}"
    )
    for label, failure in failures.items():
        print(f"  {label}: {failure}")
    assert operations >= 30
    assert not failures, failures


def _summary(exc: BaseException) -> str:
    """The failures schemathesis found, in a line or two (its own text names them)."""
    text = str(exc)
    for inner in getattr(exc, "exceptions", ()):
        text += " | " + str(inner)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keep = [line for line in lines if line.startswith(("- ", "Received", "Documented", "["))]
    return " ".join(keep or lines[:3])[:600]

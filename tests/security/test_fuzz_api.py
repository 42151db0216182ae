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
EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def corrected(document: dict) -> tuple[dict, list[str]]:
    """The served document with its known defects mended (see the xfail test below), so
    the fuzzing covers every operation and judges answers against what is meant."""
    fixes = []
    token = document["paths"]["/auth/token"]["post"]["responses"]
    if "401" not in token:
        token["401"] = {"description": "wrong username or password", "content": _ERROR}
        fixes.append("401 of POST /auth/token")
    error = document["components"]["schemas"]["Error"]
    if error.get("additionalProperties") is False:
        del error[
            "additionalProperties"
        ]  # CONFLICT carries existing_id, NO_AVAILABILITY alternatives
        fixes.append("Error's extra fields")
    for schema in document["components"]["schemas"].values():
        for prop in schema.get("properties", {}).values():
            for bound in ("minimum", "maximum"):
                if isinstance(prop.get(bound), str):
                    prop[bound] = float(prop[bound])
                    fixes.append("money bounds as numbers")
    return document, sorted(set(fixes))


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


@pytest.mark.xfail(
    strict=True,
    reason="owner: the gateway's lead. /auth/token should list errors=(401,) "
    "(gateway/routes/operations.py); Error should allow the extra fields CONFLICT and "
    "NO_AVAILABILITY carry (Meta unknown=INCLUDE in gateway/schemas/common.py); Money's "
    'Range bounds come out as strings ("0.00"), which is not valid JSON Schema',
)
def test_the_served_document_needs_no_correction():
    import gateway.service  # noqa: F401  (registers every route)
    from gateway import openapi

    assert corrected(openapi.build())[1] == []


@pytest.fixture
def no_rate_limits(monkeypatch):
    for name in ("RATE_LIMIT_PER_TOKEN", "RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setenv(name, "0")


def test_fuzzing_the_documented_api_finds_no_server_error_and_no_off_contract_answer(
    no_rate_limits, suite
):
    token = suite.as_admin().token
    document, corrections = corrected(suite.get("/openapi.json").json())
    schema = schemathesis.openapi.from_dict(document)
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
        f"operations with an off-contract answer {len(failures)}; "
        f"document corrected first for {corrections}"
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

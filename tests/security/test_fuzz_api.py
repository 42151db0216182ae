"""Property-based fuzzing of the whole API from its own /openapi.json (schemathesis): valid
and invalid requests to every operation, as the admin, against the running suite. Nothing
may answer 5xx, and every answer must match what the document says about it."""

import base64
import json
from collections import Counter

import pytest
import requests
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


# What no database of the suite can take: text with a NUL or half a surrogate pair (which
# JSON's \\u escapes carry; a URL cannot, so paths and queries get the NUL only), and
# numbers past PostgreSQL's integers. Each must be the caller's 4xx wherever it is sent.
HOSTILE_TEXT = ("nul \x00 inside", "half \ud800 a pair")
HOSTILE_NUMBERS = (2**31, 2**63, -(2**31) - 1)


def _hostile(value, text=HOSTILE_TEXT) -> tuple:
    if isinstance(value, bool):
        return ()
    if isinstance(value, str):
        return text
    if isinstance(value, int):
        return HOSTILE_NUMBERS
    return ()


def _variants(case):
    """Copies of `case` with one value made hostile, in its body (and one level into its
    objects), its query or its path; what was changed, for the report."""
    body = case.body if isinstance(case.body, dict) else {}
    for name, value in body.items():
        nested = value.items() if isinstance(value, dict) else [(None, value)]
        for inner, item in nested:
            for bad in _hostile(item):
                variant = case.derive(keep_auth=True)
                variant.body = {**body, name: {**value, inner: bad} if inner else bad}
                yield variant, f"body {name}{'.' + inner if inner else ''}={bad!r}"
    for name, value in case.query.items():
        for bad in _hostile(value, text=HOSTILE_TEXT[:1]):
            yield case.derive(keep_auth=True, query={**case.query, name: bad}), f"query {name}"
    for name, value in case.path_parameters.items():
        for bad in _hostile(value, text=HOSTILE_TEXT[:1]):
            variant = case.derive(keep_auth=True)
            variant.path_parameters = {**case.path_parameters, name: bad}
            yield variant, f"path {name}={bad!r}"


def test_text_no_database_can_store_and_numbers_past_its_integers_are_4xx_everywhere(
    no_rate_limits, suite
):
    token = suite.as_admin().token
    schema = schemathesis.openapi.from_dict(suite.get("/openapi.json").json())
    headers = {"Authorization": f"Bearer {token}"}
    server_errors: list[str] = []
    sent = 0

    for result in schema.get_all_operations():
        operation = result.ok()

        def probe(case):
            nonlocal sent
            for variant, changed in _variants(case):
                # sent as JSON escapes, as a client's JSON library writes them
                body = json.dumps(variant.body) if isinstance(variant.body, dict) else None
                response = requests.request(
                    variant.method,
                    suite.base_url + variant.formatted_path,
                    params=variant.query,
                    data=body,
                    headers={**headers, "Content-Type": "application/json"},
                    timeout=30,
                )
                sent += 1
                if response.status_code >= 500:
                    label = f"{case.method} {case.path}"
                    server_errors.append(f"{label} {changed}: {response.status_code}")

        _on_one_valid_request(operation, probe)

    print(f"\nhostile values: {sent} requests, {len(server_errors)} answered 5xx")
    assert sent >= 100
    assert not server_errors, server_errors


def _cursor(key) -> str:
    """A cursor made by hand, encoded as the lists encode theirs."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


# Cursors a client can forge: valid base64 JSON holding what the database cannot take.
FORGED_CURSORS = {
    "nul": _cursor("a\x00b"),
    "half a surrogate pair": _cursor("\ud800"),
    "a list with a nul": _cursor(["1", "a\x00"]),
    "a price past NUMERIC": _cursor(["1e999999", "x"]),
    "an infinite price": _cursor(["Infinity", "x"]),
    "an object": _cursor([{"id": 1}]),
    "nested past the parser": base64.urlsafe_b64encode(b"[" * 1500 + b"]" * 1500).decode(),
}


def test_a_forged_cursor_is_a_400_naming_the_cursor_on_every_list(no_rate_limits, suite):
    token = suite.as_admin().token
    schema = schemathesis.openapi.from_dict(suite.get("/openapi.json").json())
    headers = {"Authorization": f"Bearer {token}"}
    answers: dict[str, tuple] = {}

    for result in schema.get_all_operations():
        operation = result.ok()
        if not any(p.name == "cursor" for p in operation.query):
            continue

        def probe(case):
            for name, cursor in FORGED_CURSORS.items():
                response = requests.get(
                    suite.base_url + case.formatted_path,
                    params={**case.query, "cursor": cursor},
                    headers=headers,
                    timeout=30,
                )
                named = "cursor" in (response.json().get("fields") or {})
                answers[f"{case.path} {name}"] = (response.status_code, named)

        _on_one_valid_request(operation, probe)

    print(f"\nforged cursors: {len(answers)} requests")
    assert len(answers) >= 10 * len(FORGED_CURSORS)
    assert {label: a for label, a in answers.items() if a != (400, True)} == {}


def _on_one_valid_request(operation, probe) -> None:
    """Run `probe` once, on one valid request of `operation` as schemathesis makes it."""
    settings(
        max_examples=1,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(given(case=operation.as_strategy(GenerationMode.POSITIVE))(probe))()


def _summary(exc: BaseException) -> str:
    """The failures schemathesis found, in a line or two (its own text names them)."""
    text = str(exc)
    for inner in getattr(exc, "exceptions", ()):
        text += " | " + str(inner)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keep = [line for line in lines if line.startswith(("- ", "Received", "Documented", "["))]
    return " ".join(keep or lines[:3])[:600]

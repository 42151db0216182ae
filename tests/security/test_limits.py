"""Caps a careless or hostile client cannot get around, on every endpoint from the gateway's
route table: page sizes (at most 500) and bodies (at most 1 MiB, however they are sent).
The 429 of the rate limits is tested in tests/e2e/test_gateway.py."""

import re

import pytest

from gateway.http import MAX_BODY_BYTES, ROUTES

ONE_MIB_AND_MORE = MAX_BODY_BYTES + 1024


@pytest.fixture
def no_rate_limits(monkeypatch):
    for name in ("RATE_LIMIT_PER_TOKEN", "RATE_LIMIT_PER_ADDRESS"):
        monkeypatch.setenv(name, "0")


def concrete(path: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: "1" if m.group(1) == "int" else "x", path)


def test_page_sizes_and_bodies_are_capped_on_every_endpoint(no_rate_limits, suite):
    admin = suite.as_admin()
    paged = [s for s in ROUTES if s.query is not None and "limit" in s.query().fields]
    with_body = [s for s in ROUTES if s.body is not None]
    wrong = []
    for spec in paged:
        for limit in ("501", "100000", "-1", "0"):
            answer = admin.get(f"{concrete(spec.path)}?limit={limit}")
            if answer.status_code != 400 or "limit" not in answer.json().get("fields", {}):
                wrong.append(f"{spec.path}?limit={limit}: {answer.status_code}")

    def chunks():
        piece = b" " * 65536
        for _ in range(ONE_MIB_AND_MORE // len(piece) + 1):
            yield piece

    for spec in with_body:
        path = concrete(spec.path)
        headers = {"Content-Type": "application/json"}
        declared = admin.request(spec.method, path, data=b" " * ONE_MIB_AND_MORE, headers=headers)
        chunked = admin.request(spec.method, path, data=chunks(), headers=headers)
        for how, answer in (("with a length", declared), ("chunked", chunked)):
            if answer.status_code != 413 or answer.json()["error"] != "PAYLOAD_TOO_LARGE":
                wrong.append(f"{spec.method} {path} {how}: {answer.status_code}")
    # a chunked body within the cap is read like any other
    small = admin.request(
        "POST",
        "/auth/token",
        data=iter([b'{"username": "admin", ', b'"password": "admin"}']),
        headers={"Content-Type": "application/json"},
    )
    if small.status_code != 200:
        wrong.append(f"a small chunked body: {small.status_code} {small.text}")
    print(
        f"\nlimits: {len(paged)} paged lists refuse 4 bad limits each, {len(with_body)} "
        f"endpoints with a body refuse {ONE_MIB_AND_MORE} bytes sent with a length and "
        f"chunked; wrong {len(wrong)}"
    )
    assert paged and with_body
    assert not wrong, "\n".join(wrong)

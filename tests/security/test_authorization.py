"""Who may do what: every endpoint of the contract x every role, built from the gateway's
own route table so an endpoint added later is covered without touching this file; tokens
that must name nobody; a tracking code that tells nothing but where a complaint stands."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import eventlet
import jwt
import pytest

from gateway.http import ROUTES, RouteSpec
from tests.support import Api, wait_for

SECRET = "test-secret-key-that-is-long-enough-for-hs256"  # tests/conftest.py sets it
RIGHT, OTHER = "housekeeping", "engineering"
ROLES = ("none", "agent", "manager_right", "manager_other", "director", "admin")
# what each client's token says its role is
ROLE_OF = {
    "agent": "agent",
    "manager_right": "manager",
    "manager_other": "manager",
    "director": "director",
    "admin": "admin",
}


@pytest.fixture
def no_address_limit(monkeypatch):
    # The anonymous column alone sends more requests than one address may in a second.
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "0")


def concrete_path(spec: RouteSpec) -> str:
    """The route with ids and codes that name nothing, so no request changes anything."""

    def fill(match: re.Match) -> str:
        return "999999" if match.group(1) == "int" else "no-such-thing"

    return re.sub(r"<(?:(\w+):)?\w+>", fill, spec.path)


def clients(suite) -> dict[str, Api]:
    return {
        "none": suite.anonymous(),
        "agent": suite.as_role("agent", "front_office"),
        "manager_right": suite.as_role("manager", RIGHT),
        "manager_other": suite.as_role("manager", OTHER),
        "director": suite.as_role("director", RIGHT),
        "admin": suite.as_admin(),
    }


def expected(spec: RouteSpec, role: str) -> str:
    if not spec.roles:
        return "allowed"
    if role == "none":
        return "401"
    return "allowed" if ROLE_OF[role] in spec.roles else "403"


def test_every_endpoint_answers_every_role_as_the_contract_says(no_address_limit, suite):
    callers = clients(suite)
    routes = list(ROUTES)

    def column(role: str) -> list[str]:
        wrong = []
        for spec in routes:
            path = concrete_path(spec)
            body = {} if spec.method in ("POST", "PATCH", "PUT") else None
            answer = callers[role].request(spec.method, path, json=body)
            want, got = expected(spec, role), answer.status_code
            if want == "allowed":
                # /health answers 503 when a service is slow: that is its job, not a refusal
                ok = got not in (401, 403) and (got < 500 or (spec.path, got) == ("/health", 503))
            else:
                ok = got == int(want) and answer.json()["error"] in ("UNAUTHORIZED", "FORBIDDEN")
            if not ok:
                wrong.append(f"{spec.method} {path} as {role}: {got}, want {want}")
        return wrong

    wrong = [w for found in eventlet.GreenPool().imap(column, ROLES) for w in found]
    print(
        f"\nauthorization matrix: {len(routes)} endpoints x {len(ROLES)} roles "
        f"= {len(routes) * len(ROLES)} checks, {len(wrong)} wrong"
    )
    assert not wrong, "\n".join(wrong)
    assert len(routes) >= 30, "the gateway's route table looks incomplete"

    # Tokens that must name nobody, in every way a client might send them.
    admin = callers["admin"]
    tokens = bad_tokens(admin.token)
    for name, token in tokens.items():
        for header in (f"Bearer {token}", f"bearer  {token}", token):
            answer = suite.get("/staff", headers={"Authorization": header})
            assert answer.status_code == 401, (name, header, answer.text)
            assert answer.json()["error"] == "UNAUTHORIZED"
    # The right key, but a role the contract does not know: signed, yet allowed nothing.
    stranger = jwt.encode(
        {"sub": "1", "role": "superuser", "exp": datetime.now(UTC) + timedelta(hours=1)},
        SECRET,
        "HS256",
    )
    answer = suite.get("/staff", headers={"Authorization": f"Bearer {stranger}"})
    assert answer.status_code == 403, answer.text
    print(f"bad tokens refused with 401: {len(tokens)} kinds x 3 ways of sending them")


def _segment(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def bad_tokens(good: str) -> dict[str, str]:
    """Tokens that must name nobody, whatever they claim (the admin's own id and role)."""
    later = datetime.now(UTC) + timedelta(hours=1)
    claims = {"sub": "1", "username": "admin", "role": "admin", "exp": later}
    unix = {**claims, "exp": int(later.timestamp())}
    header, payload, _ = good.split(".")
    return {
        "expired": jwt.encode(
            {**claims, "exp": datetime.now(UTC) - timedelta(seconds=1)}, SECRET, "HS256"
        ),
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(unix)}.",
        "alg none, no dot": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(unix)}",
        "another key": jwt.encode(claims, "another-key-entirely-0123456789-0123456789", "HS256"),
        "HS384 with the key": jwt.encode(claims, SECRET, "HS384"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, "HS256"),
        "no subject": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, SECRET, "HS256"),
        "subject not a number": jwt.encode({**claims, "sub": "admin"}, SECRET, "HS256"),
        "header of another token": f"{_segment({'alg': 'HS256'})}.{payload}.{good.split('.')[2]}",
        "payload swapped": f"{header}.{_segment(unix)}.{good.split('.')[2]}",
        "malformed": "not-a-token",
        "two parts": "abc.def",
        "garbage": "%%%.***.!!!",
        "empty": "",
    }


def only_a_manager_of_the_items_department_signs_it_off(suite):
    agent = suite.as_role("agent", "customer_service")
    guest = agent.post(
        "/guests", {"name": "Elena Sanz", "phone": "+34611223344", "category": "individual"}
    )
    assert guest.status_code == 201, guest.text
    complaint = agent.post(
        "/complaints",
        {
            "guest_id": guest.json()["id"],
            "channel": "phone",
            "category": "noise",
            "description": "Party next door at 2am",
        },
    )
    assert complaint.status_code == 201, complaint.text
    revisit = wait_for(
        lambda: agent.get(f"/revisits?guest_id={guest.json()['id']}").json()["items"], timeout=15
    )[0]
    outcome = agent.post(
        f"/revisits/{revisit['id']}/outcome",
        {
            "reached": True,
            "items": [{"kind": "request", "text": "Fix the door", "department": RIGHT}],
        },
    )
    assert outcome.status_code == 200, outcome.text
    item = outcome.json()["items"][0]
    sign_off = f"/revisits/{revisit['id']}/items/{item['id']}/sign-off"
    for who in (
        agent,
        suite.as_role("manager", OTHER),
        suite.as_role("director", OTHER),
    ):
        answer = who.post(sign_off, {"result": "The door was fixed"})
        assert answer.status_code == 403, (who.staff["role"], answer.text)
        assert answer.json()["error"] == "FORBIDDEN"
    signed = suite.as_role("manager", RIGHT).post(sign_off, {"result": "The door was fixed"})
    assert signed.status_code == 200, signed.text


def a_tracking_code_reveals_nothing_but_where_the_complaint_stands(suite):
    agent = suite.as_role("agent", "customer_service")
    personal = {
        "name": "Rocío Albarrán Quintero",
        "phone": "+34622334455",
        "email": "rocio.albarran@example.org",
    }
    complaint = agent.post(
        "/complaints",
        {
            "contact": personal,
            "channel": "email",
            "category": "cleanliness",
            "description": "Hair in the shower of room 512, third time",
        },
    )
    assert complaint.status_code == 201, complaint.text
    code = complaint.json()["tracking_code"]
    note = "Guest sounded angry, offer a free dinner"
    acted = agent.post(
        f"/complaints/{complaint.json()['id']}/actions", {"action": "note", "note": note}
    )
    assert acted.status_code in (200, 201), acted.text

    anonymous = suite.anonymous()
    tracked = anonymous.get(f"/track/{code}")
    assert tracked.status_code == 200, tracked.text
    body = tracked.json()
    allowed = {"tracking_code", "status", "department", "received_at", "updated_at", "steps"}
    assert set(body) <= allowed, set(body) - allowed
    assert {"status", "department", "received_at", "updated_at", "steps"} <= set(body)
    for step in body["steps"]:
        assert set(step) <= {"at", "status"}, step
    for secret in [
        *personal.values(),
        "Albarrán",
        "622334455",
        "Hair in the shower",
        "free dinner",
        agent.staff["username"],
    ]:
        assert secret not in tracked.text, secret

    # A code opens that complaint's status and nothing else.
    assert anonymous.get(f"/complaints/{complaint.json()['id']}").status_code == 401
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    for guess in (forged, code.lower() + "X", "' OR '1'='1", "../complaints/1", "%00"):
        assert anonymous.get(f"/track/{guess}").status_code in (400, 401, 404), guess


def test_department_bound_rights_and_what_a_tracking_code_opens(suite):
    # one running suite for both: starting it is the slow part
    only_a_manager_of_the_items_department_signs_it_off(suite)
    a_tracking_code_reveals_nothing_but_where_the_complaint_stands(suite)


# What the contract itself says about who may call, written out here rather than read from
# the gateway's route table: the matrix above checks the gateway does what its table says;
# this checks the table says what the contract does (a route letting too many in fails).
CONTRACT_PUBLIC = {
    ("POST", "/auth/token"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/track/<string:tracking_code>"),
}
CONTRACT_ADMIN_ONLY = {
    ("POST", "/room-types"),
    ("POST", "/staff"),
    ("POST", "/admin/jobs/<string:job>"),
}


def test_the_route_table_asks_for_the_roles_the_contract_names():
    import gateway.service  # noqa: F401  (registers every route)

    roles = {(spec.method, spec.path): spec.roles for spec in ROUTES}
    assert set(roles) >= CONTRACT_PUBLIC | CONTRACT_ADMIN_ONLY
    for route, needed in roles.items():
        if route in CONTRACT_PUBLIC:
            assert not needed, route
        else:  # every other endpoint needs a token
            assert needed, route
        if route in CONTRACT_ADMIN_ONLY:
            assert needed == {"admin"}, route

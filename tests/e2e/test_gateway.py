"""The gateway's conventions, over real HTTP: auth and roles, the error shape, limits,
health, metrics and the OpenAPI document."""

import json
from datetime import UTC, datetime, timedelta

import eventlet
import jwt
import pytest
import requests

from tests.support import Api, wait_for


def assert_error(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_without_a_valid_token_the_answer_is_401(suite):
    assert_error(suite.get("/staff"), 401, "UNAUTHORIZED")
    assert_error(
        suite.get("/staff", headers={"Authorization": "Bearer not-a-token"}), 401, "UNAUTHORIZED"
    )
    expired = jwt.encode(
        {"sub": "1", "role": "admin", "exp": datetime.now(UTC) - timedelta(minutes=1)},
        "test-secret-key-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert_error(
        suite.get("/staff", headers={"Authorization": f"Bearer {expired}"}), 401, "UNAUTHORIZED"
    )
    token = suite.as_admin().token
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_error(
        suite.get("/staff", headers={"Authorization": f"Bearer {tampered}"}), 401, "UNAUTHORIZED"
    )
    assert_error(
        suite.post("/auth/token", {"username": "admin", "password": "wrong"}), 401, "UNAUTHORIZED"
    )


def test_a_role_that_may_not_do_something_gets_403(suite):
    agent = suite.as_role("agent")
    body = {"username": "x1", "password": "long-enough", "name": "X", "role": "agent"}
    assert_error(agent.post("/staff", body), 403, "FORBIDDEN")
    assert_error(agent.get("/staff"), 403, "FORBIDDEN")
    manager = suite.as_role("manager", "housekeeping")
    assert manager.get("/staff").status_code == 200


def test_bad_input_is_a_400_naming_each_field(suite):
    admin = suite.as_admin()
    malformed = admin.request(
        "POST", "/staff", data=b'{"username": ', headers={"Content-Type": "application/json"}
    )
    assert "_body" in assert_error(malformed, 400, "VALIDATION_ERROR")["fields"]

    not_an_object = admin.post("/staff", [1, 2])
    assert_error(not_an_object, 400, "VALIDATION_ERROR")

    unknown_and_wrong = admin.post(
        "/staff",
        {"username": "ok_name", "password": 12345678, "name": "", "role": "chef", "shoe": 42},
    )
    fields = assert_error(unknown_and_wrong, 400, "VALIDATION_ERROR")["fields"]
    assert {"password", "name", "role", "shoe"} <= set(fields)

    manager_without_department = admin.post(
        "/staff", {"username": "mgr", "password": "long-enough", "name": "M", "role": "manager"}
    )
    assert (
        "department" in assert_error(manager_without_department, 400, "VALIDATION_ERROR")["fields"]
    )
    assert_error(admin.get("/staff?limit=0"), 400, "VALIDATION_ERROR")
    assert_error(admin.get("/staff?limit=501"), 400, "VALIDATION_ERROR")
    assert_error(admin.get("/staff?cursor=garbage"), 400, "VALIDATION_ERROR")


def test_unknown_paths_are_404_in_the_error_shape(suite):
    assert_error(suite.get("/no/such/thing"), 404, "NOT_FOUND")
    assert_error(suite.as_admin().post("/admin/jobs/make-coffee"), 404, "NOT_FOUND")


def test_staff_creation_is_idempotent_and_usernames_unique(suite):
    admin = suite.as_admin()
    body = {
        "username": "carmen",
        "password": "long-enough",
        "name": "Carmen",
        "role": "director",
        "department": "engineering",
    }
    first = admin.post("/staff", body, headers={"Idempotency-Key": "k-1"})
    again = admin.post("/staff", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert "password" not in first.text and "hash" not in first.text
    duplicate = admin.post("/staff", body)
    assert assert_error(duplicate, 409, "CONFLICT")["existing_id"] == first.json()["id"]

    listed = admin.get("/staff?role=director&department=engineering").json()
    assert [s["username"] for s in listed["items"]] == ["carmen"]
    assert listed["next"] is None


def test_lists_are_paged_with_a_cursor(suite):
    admin = suite.as_admin()
    for n in range(3):
        body = {"username": f"page{n}", "password": "long-enough", "name": "P", "role": "agent"}
        assert admin.post("/staff", body).status_code == 201
    seen, cursor = [], None
    while True:
        answer = admin.get("/staff?role=agent&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status_code == 200
        seen += [s["username"] for s in answer.json()["items"]]
        cursor = answer.json()["next"]
        if cursor is None:
            break
    assert seen == ["page0", "page1", "page2"]


def test_health_metrics_and_docs_need_no_token(suite):
    health = suite.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    suite.get("/no/such/thing")
    metrics = suite.get("/metrics")
    assert metrics.status_code == 200
    assert "hotelcs_http_requests_total" in metrics.text
    assert "hotelcs_http_request_duration_seconds_bucket" in metrics.text
    assert 'hotelcs_green_thread_lag_seconds_count{service="gateway"}' in metrics.text
    # route templates as labels, never the ids in a path
    assert 'route="/health"' in metrics.text

    document = suite.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    staff_post = document["paths"]["/staff"]["post"]
    assert staff_post["requestBody"]["content"]["application/json"]["schema"]
    assert {"201", "400", "401", "403", "409"} <= set(staff_post["responses"])
    assert "security" not in document["paths"]["/health"]["get"]

    docs = suite.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "http" not in docs.text.split("<body>")[0].replace("http-equiv", "")
    assert suite.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_every_service_serves_its_own_metrics_and_health(start_services, suite_config):
    from services.guests.service import GuestsService

    runner = start_services(GuestsService)
    (container,) = runner.containers
    metrics = next(d for d in container.extensions if type(d).__name__ == "Metrics")
    base = f"http://127.0.0.1:{metrics.port}"
    assert requests.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
    answer = requests.get(f"{base}/metrics", timeout=5)
    assert answer.status_code == 200
    assert "hotelcs_entrypoint_calls_total" in answer.text
    assert "hotelcs_green_thread_lag_seconds_bucket" in answer.text


def test_bodies_over_one_mebibyte_are_refused_with_413(suite):
    admin = suite.as_admin()
    huge = json.dumps({"username": "x" * (1024 * 1024 + 10)})
    answer = admin.request(
        "POST", "/staff", data=huge, headers={"Content-Type": "application/json"}
    )
    assert_error(answer, 413, "PAYLOAD_TOO_LARGE")


def test_a_service_that_is_down_gives_503_within_seconds(start_services, suite_config):
    from gateway.service import GatewayService

    start_services(GatewayService)  # no service behind it
    api = Api(f"http://127.0.0.1:{suite_config['port']}")
    with eventlet.Timeout(15):
        health = api.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["services"]["guests"] == "down"
    assert health.json()["services"]["gateway"] == "ok"
    with eventlet.Timeout(15):
        answer = api.as_admin().post("/admin/jobs/hold-release")
    assert_error(answer, 503, "SERVICE_UNAVAILABLE")


@pytest.fixture
def tight_limits(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "1")
    monkeypatch.setenv("RATE_LIMIT_ADDRESS_BURST", "3")
    monkeypatch.setenv("RATE_LIMIT_PER_TOKEN", "2")
    monkeypatch.setenv("RATE_LIMIT_BURST", "5")


def test_over_the_rate_limit_the_answer_is_429_with_retry_after(tight_limits, suite):
    answers = [suite.post("/auth/token", {"username": "a", "password": "b"}) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert_error(limited[0], 429, "RATE_LIMITED")
    assert int(limited[0].headers["Retry-After"]) >= 1

    admin = Api(suite.base_url)
    admin.token = wait_for(lambda: _token_when_allowed(suite), timeout=10)
    statuses = [admin.get("/staff").status_code for _ in range(10)]
    assert 429 in statuses and 200 in statuses


def _token_when_allowed(api):
    answer = api.post("/auth/token", {"username": "admin", "password": "admin"})
    return answer.json()["access_token"] if answer.status_code == 200 else None

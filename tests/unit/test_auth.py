import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gateway import auth

KEY = "a-test-key-long-enough-for-hmac-sha256-0123456789"


class FakeRequest:
    """Only the headers of a request: what `principal_from` reads."""

    def __init__(self, authorization: str | None):
        self.headers = {"Authorization": authorization} if authorization else {}


def bearer(token: str) -> FakeRequest:
    return FakeRequest(f"Bearer {token}")


def test_a_token_names_the_staff_member_role_and_department():
    token = auth.issue_token(KEY, 12, "lucia", "manager", "housekeeping")
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0
    principal = auth.principal_from(bearer(token["access_token"]), KEY)
    assert principal == auth.Principal(12, "lucia", "manager", "housekeeping")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            jwt.encode(
                {"sub": "1", "role": "admin", "exp": datetime.now(UTC) - timedelta(seconds=5)},
                KEY,
                algorithm="HS256",
            ),
            id="expired",
        ),
        pytest.param(
            jwt.encode(
                {"sub": "1", "role": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)},
                "another-key-entirely-0123456789-0123456789",
                algorithm="HS256",
            ),
            id="signed-with-another-key",
        ),
        pytest.param("not.a.token", id="malformed"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_tokens_name_nobody(token):
    assert auth.principal_from(bearer(token), KEY) is None


def test_an_unsigned_token_is_refused():
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    unsigned = (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': '1', 'role': 'admin', 'exp': exp})}."
    )
    assert auth.principal_from(bearer(unsigned), KEY) is None


def test_a_tampered_token_is_refused():
    token = auth.issue_token(KEY, 3, "ana", "agent", None)["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert auth.principal_from(bearer(f"{header}.{forged}.{signature}"), KEY) is None


def test_no_header_or_another_scheme_names_nobody():
    assert auth.principal_from(FakeRequest(None), KEY) is None
    assert auth.principal_from(FakeRequest("Basic YWRtaW46YWRtaW4="), KEY) is None


def test_passwords_are_hashed_with_salt_and_checked():
    first, second = auth.hash_password("s3cret-pass"), auth.hash_password("s3cret-pass")
    assert first != second
    assert "s3cret" not in first
    assert auth.check_password("s3cret-pass", first)
    assert not auth.check_password("wrong", first)
    assert not auth.check_password("s3cret-pass", "garbage")

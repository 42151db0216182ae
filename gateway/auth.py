"""Staff tokens (signed JWTs carrying role and department) and password hashing.

Tokens are HS256 with the key in `HOTELCS_JWT_SECRET`; any other algorithm, `alg: none`
included, is refused, as is an expired, tampered or malformed token.
"""

import functools
import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from nameko.extensions import DependencyProvider

from servicekit import settings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
_DEV_SECRET = "hotelcs-development-secret-change-me-0123456789"


@dataclass(frozen=True)
class Principal:
    staff_id: int
    username: str
    role: str
    department: str | None

    @property
    def subject(self) -> str:
        return str(self.staff_id)

    def as_actor(self) -> dict:
        return {
            "id": self.staff_id,
            "username": self.username,
            "role": self.role,
            "department": self.department,
        }


def signing_key() -> str:
    key = os.environ.get("HOTELCS_JWT_SECRET")
    if not key:
        log.warning("HOTELCS_JWT_SECRET is not set: tokens use the development key")
        return _DEV_SECRET
    return key


class SigningKey(DependencyProvider):
    """The key tokens are signed with, read once when the gateway starts."""

    def setup(self):
        self.key = signing_key()

    def get_dependency(self, worker_ctx) -> str:
        return self.key


def token_lifetime() -> timedelta:
    return timedelta(seconds=settings.int_setting("HOTELCS_TOKEN_SECONDS", 8 * 3600, minimum=60))


def issue_token(key: str, staff_id: int, username: str, role: str, department: str | None) -> dict:
    lifetime = token_lifetime()
    now = datetime.now(UTC)
    claims = {
        "sub": str(staff_id),
        "username": username,
        "role": role,
        "department": department,
        "iat": now,
        "exp": now + lifetime,
    }
    return {
        "access_token": jwt.encode(claims, key, algorithm=ALGORITHM),
        "token_type": "bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def principal_from(request, key: str) -> Principal | None:
    """The staff member a request's bearer token names, or None if it has no valid token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        principal, expires = _verified(token.strip(), key)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None
    # checked here as PyJWT does, since PyJWT sees a token only the first time
    return principal if time.time() < expires else None


@functools.lru_cache(maxsize=4096)
def _verified(token: str, key: str) -> tuple[Principal, int]:
    """The principal a token names and when it expires. Decoding and checking a token is
    about a twentieth of the gateway's CPU for a request, and a client sends the same token
    for hours; only good tokens are kept (a refused one raises, so is checked every time)."""
    claims = jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        options={"require": ["exp", "sub", "role"]},
    )
    principal = Principal(
        staff_id=int(claims["sub"]),
        username=str(claims.get("username", "")),
        role=str(claims["role"]),
        department=claims.get("department"),
    )
    return principal, int(claims["exp"])


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate.hex(), digest)

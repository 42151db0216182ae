"""Keyset pagination behind the contract's lists: `{"items": [...], "next": cursor|null}`.

A cursor is opaque to clients: the sort key of the last item, encoded. Services page by
an indexed key, so the hundredth page costs what the first does.
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from servicekit import errors

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, expect: type | tuple[type, ...] = (int, str, list)) -> Any:
    """The key a cursor holds; a 400 naming `cursor` if it is not one this list gave."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, expect) or isinstance(key, bool):
        raise errors.ValidationFailed.on("cursor", "not a cursor this list gave")
    return key


def page(
    rows: Sequence, limit: int, key: Callable[[Any], Any], dump: Callable[[Any], dict]
) -> dict:
    """Given up to `limit + 1` rows in order, the page and the cursor to the next one."""
    items = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [dump(r) for r in items],
        "next": encode_cursor(key(items[-1])) if more and items else None,
    }

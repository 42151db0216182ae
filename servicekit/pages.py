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
from servicekit.database import unstorable

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
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        key = None
    if not isinstance(key, expect) or isinstance(key, bool) or not _storable(key):
        raise errors.ValidationFailed.on("cursor", "not a cursor this list gave")
    return key


def _storable(key: Any) -> bool:
    # a cursor can be made by hand as well as by us: text in it that the database would
    # refuse is a 400 here, not the driver's 500 later; a key is a value or a flat list
    parts = key if isinstance(key, list) else [key]
    return all(_storable_value(part) for part in parts)


def _storable_value(value: Any) -> bool:
    if isinstance(value, str):
        return not unstorable(value)
    return isinstance(value, int | float) or value is None


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

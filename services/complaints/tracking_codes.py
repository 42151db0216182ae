"""Tracking codes: what a guest reads over the phone to ask where their complaint stands.

Thirteen characters of Crockford's base32 (no I, L, O or U, so nothing is misheard or
misread), grouped 4-4-5 like `K7QX-3MPA-WZ9DR`: 65 random bits from `secrets`, so codes
are neither sequential nor guessable.
"""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 13
BITS = LENGTH * 5
GROUPS = (4, 4, 5)
# What people type for the letters the alphabet leaves out.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code, e.g. `K7QX-3MPA-WZ9DR`."""
    value = secrets.randbits(BITS)
    chars = []
    for _ in range(LENGTH):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return _grouped("".join(chars))


def normalise(typed: str) -> str | None:
    """The code as stored, from what a guest typed (any case, dashes or spaces, O for 0);
    None when it cannot be a code at all."""
    bare = "".join(typed.split()).replace("-", "").upper().translate(_READ_AS)
    if len(bare) != LENGTH or any(c not in ALPHABET for c in bare):
        return None
    return _grouped(bare)


def _grouped(bare: str) -> str:
    parts, start = [], 0
    for size in GROUPS:
        parts.append(bare[start : start + size])
        start += size
    return "-".join(parts)

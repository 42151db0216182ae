"""Structured (JSON) logs without personal data.

Log records carry ids and codes, never phones, emails, birthdays or card numbers. As a
second line of defence, `RedactPersonalData` masks anything in a record that looks like
one of them, whatever a careless message or a library put there.
"""

import logging
import re

_PATTERNS = (
    # card numbers: 13 to 19 digits, spaces or dashes allowed between them
    (re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"), "[redacted-number]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[redacted-email]"),
    (re.compile(r"\+\d[\d ()-]{6,}\d"), "[redacted-phone]"),
    (re.compile(r"\b(?:19|20)\d\d-[01]\d-[0-3]\d(?!T|\s\d)"), "[redacted-date]"),
)
_PERSONAL_KEYS = {"phone", "email", "birthday", "card", "card_number", "password", "contact"}


def redact(text: str) -> str:
    for pattern, mask in _PATTERNS:
        text = pattern.sub(mask, text)
    return text


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        for key in list(vars(record)):
            if key in _PERSONAL_KEYS:
                setattr(record, key, "[redacted]")
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True

import logging

from servicekit.logs import RedactPersonalData, redact


def test_personal_data_is_masked_whatever_the_message():
    text = redact(
        "guest +34 612 345 678 wrote from ana.perez@example.com, card 4111 1111 1111 1111, "
        "born 1980-05-17"
    )
    for secret in ("612", "ana.perez", "4111", "1980-05-17"):
        assert secret not in text


def test_ids_and_codes_are_kept():
    assert redact("guest 42 file 261123001 complaint K7QX-3MPA") == (
        "guest 42 file 261123001 complaint K7QX-3MPA"
    )


def test_the_filter_cleans_arguments_extras_and_tracebacks():
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "lookup for %s failed", ("+34612345678",), None
    )
    record.phone = "+34612345678"
    try:
        raise ValueError("bad email bob@example.org")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactPersonalData().filter(record)
    assert "+34612345678" not in record.getMessage()
    assert record.phone == "[redacted]"
    assert "bob@example.org" not in record.exc_text

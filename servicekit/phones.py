"""Phone numbers as the whole suite keeps them: E.164, read in the hotel's region
(`HOTEL_PHONE_REGION`, default ES) when written without a country code. One rule for a
guest's file, a complaint's contact and a booking's contact, so a caller is recognised by
the number however it was typed, and an SMS provider gets a number it can dial."""

import phonenumbers

from servicekit import errors, settings


def phone_region() -> str:
    # a region code as phonenumbers reads it ("es" would read no national number at all)
    raw = settings.env("HOTEL_PHONE_REGION", "ES")
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise settings.SettingError("HOTEL_PHONE_REGION", raw, "a country code, e.g. ES or GB")
    return region


def normalise_phone(raw: str, field: str = "phone") -> str:
    """The phone in E.164; a 400 naming `field` if it is none.

    >>> normalise_phone("600 11 22 33")
    '+34600112233'
    """
    if not isinstance(raw, str) or not raw.strip():
        raise errors.ValidationFailed.on(field, "a phone number is required")
    try:
        number = phonenumbers.parse(raw, phone_region())
    except phonenumbers.NumberParseException:
        raise errors.ValidationFailed.on(field, "not a phone number") from None
    # "possible" (the right length for its country), not "valid": numbering plans change
    # faster than the library, and a real guest's number must never be refused.
    if not phonenumbers.is_possible_number(number):
        raise errors.ValidationFailed.on(field, "not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

"""The errors a service answers a command with, and that the gateway maps to HTTP.

They cross RPC intact: `deserialize_to_instance` makes nameko rebuild the same class
(with its arguments) on the caller's side, so the gateway maps classes, not strings.
Each carries the contract's error code; the HTTP status lives with the gateway alone.
"""

import json

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    code = "SERVICE_ERROR"

    def __init__(self, message: str, details: dict | str | None = None):
        # nameko stringifies every non-string argument on the way (an id 7 becomes "7",
        # None becomes "None"), so the details travel as one JSON string and come back typed.
        if isinstance(details, str):
            details = json.loads(details)
        self.message = message
        self.details = details or {}
        super().__init__(message, json.dumps(self.details, default=str))

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class ValidationFailed(ServiceError):
    """Bad input: `details` maps each field to its messages, like marshmallow's."""

    code = "VALIDATION_ERROR"

    @classmethod
    def on(cls, field: str, message: str) -> "ValidationFailed":
        return cls(f"{field}: {message}", {field: [message]})


@deserialize_to_instance
class NotFound(ServiceError):
    code = "NOT_FOUND"


@deserialize_to_instance
class Conflict(ServiceError):
    """`details` carries what the caller needs to resolve it (e.g. `existing_id`)."""

    code = "CONFLICT"


@deserialize_to_instance
class NoAvailability(ServiceError):
    code = "NO_AVAILABILITY"


@deserialize_to_instance
class InvalidState(ServiceError):
    code = "INVALID_STATE"


@deserialize_to_instance
class Forbidden(ServiceError):
    code = "FORBIDDEN"


@deserialize_to_instance
class Unavailable(ServiceError):
    """A dependency of the service (its database, another service) cannot answer now."""

    code = "SERVICE_UNAVAILABLE"


EXPECTED = (ValidationFailed, NotFound, Conflict, NoAvailability, InvalidState, Forbidden)

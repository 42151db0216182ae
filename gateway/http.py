"""The contract's HTTP conventions, in one place: routes, auth, errors, JSON, limits.

Every endpoint is declared with `route`, which registers it with nameko's HTTP server
and with the OpenAPI document, and wraps it in the same steps: body size cap, rate
limit, token and role check, validation of path, query and body, the call, the error
mapping, metrics. A handler receives a `Call` and returns a JSON-ready value::

    @route("GET", "/guests/<int:guest_id>", roles=STAFF, response=schemas.Guest,
           tag="guests", summary="A guest's file")
    def get_guest(self, call):
        return self.rpc("guests", "get_guest", call.path["guest_id"])
"""

import functools
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import eventlet
from kombu.exceptions import OperationalError as BrokerError
from marshmallow import Schema, ValidationError
from nameko.exceptions import RemoteError, UnknownService
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from gateway import auth
from gateway.metrics import HTTP_DURATION, HTTP_REQUESTS
from gateway.schemas.common import paths_where
from servicekit import errors
from servicekit.database import is_unavailable, unstorable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024

# Who may call: the contract's roles, or PUBLIC for the few endpoints without a token.
PUBLIC = frozenset()
AGENT, MANAGER, DIRECTOR, ADMIN = "agent", "manager", "director", "admin"
STAFF = frozenset({AGENT, MANAGER, DIRECTOR, ADMIN})
MANAGERS = frozenset({MANAGER, DIRECTOR, ADMIN})
ADMINS = frozenset({ADMIN})

STATUS = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "NO_AVAILABILITY": 409,
    "INVALID_STATE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}


class HttpError(Exception):
    """An answer in the contract's error shape, raised anywhere in the gateway."""

    def __init__(self, code: str, message: str, fields: dict | None = None, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields
        self.extra = extra
        self.headers: dict[str, str] = {}


@dataclass
class RouteSpec:
    method: str
    path: str
    roles: frozenset
    summary: str
    tag: str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    many: bool = False
    idempotent: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.path)


ROUTES: list[RouteSpec] = []


class _Entrypoint(HttpRequestHandler):
    def check_signature(self, args, kwargs):
        """nameko matches a request's arguments against the method's signature, through
        `inspect`, on every request; `route`'s method takes a request and any path values."""


@dataclass
class Call:
    """One request as a handler sees it, already authenticated and validated."""

    request: Request
    principal: auth.Principal | None
    path: dict[str, Any]
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None

    @property
    def actor(self) -> dict | None:
        """Who acts, as services record it on forms and owners."""
        return self.principal.as_actor() if self.principal else None


def route(method: str, path: str, *, roles: frozenset, summary: str, tag: str, **options):
    """Declare an endpoint; see the module's docstring.

    A POST that creates something (status 201) honours `Idempotency-Key` unless told not to.
    """
    options.setdefault("idempotent", method == "POST" and options.get("status") == 201)
    spec = RouteSpec(method=method, path=path, roles=roles, summary=summary, tag=tag, **options)
    ROUTES.append(spec)

    def decorate(handler):
        def entrypoint(self, request, **path_values):
            return serve(self, spec, handler, request, path_values)

        entrypoint.__name__ = handler.__name__
        entrypoint.__doc__ = handler.__doc__
        entrypoint.spec = spec
        return _Entrypoint.decorator(method, path)(entrypoint)

    return decorate


def json_response(status: int, payload: Any, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(payload, default=str, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(exc: HttpError) -> Response:
    body = {"error": exc.code, "message": exc.message, **exc.extra}
    if exc.fields is not None:
        body["fields"] = exc.fields
    return json_response(STATUS[exc.code], body, exc.headers)


# What SQLAlchemy and psycopg2 raise when the database is unreachable or restarting.
_DATABASE_AWAY = frozenset(
    {"OperationalError", "InterfaceError", "DisconnectionError", "PendingRollbackError"}
)


def as_http_error(exc: BaseException) -> HttpError:
    """Map whatever a handler raised to the contract's error (the one place that does)."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, ValidationError):
        return HttpError("VALIDATION_ERROR", "the request is not valid", _fields(exc.messages))
    if isinstance(exc, errors.ValidationFailed):
        return HttpError("VALIDATION_ERROR", exc.message, exc.details)
    if isinstance(exc, errors.ServiceError):
        return HttpError(exc.code, exc.message, **exc.details)
    if is_unavailable(exc):  # the gateway's own database (staff, tokens)
        return HttpError("SERVICE_UNAVAILABLE", "the gateway's database cannot be reached now")
    if isinstance(exc, RemoteError) and exc.exc_type in _DATABASE_AWAY:
        # a service whose database is down or restarting: not the client's fault, and brief
        return HttpError("SERVICE_UNAVAILABLE", "a service's database cannot be reached now")
    if isinstance(exc, eventlet.Timeout | UnknownService | BrokerError | ConnectionError | OSError):
        return HttpError(
            "SERVICE_UNAVAILABLE", "a service behind the gateway did not answer in time"
        )
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return HttpError("INTERNAL_ERROR", "an unexpected error; it has been logged")


def _fields(messages: Any) -> dict:
    if isinstance(messages, dict):
        return {str(k): v if isinstance(v, list | dict) else [v] for k, v in messages.items()}
    return {"_body": messages if isinstance(messages, list) else [messages]}


def parse_body(spec: RouteSpec, request: Request) -> Any:
    if spec.body is None:
        return None
    raw = request.get_data(cache=True)
    if not raw.strip():
        data = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(
                "VALIDATION_ERROR", "the body is not valid JSON", {"_body": [str(exc)]}
            ) from None
        except RecursionError:
            raise HttpError(
                "VALIDATION_ERROR", "the body is not valid JSON", {"_body": ["nested too deeply"]}
            ) from None
    if not isinstance(data, dict):
        raise HttpError(
            "VALIDATION_ERROR", "the body must be a JSON object", {"_body": ["not an object"]}
        )
    return _load(spec.body, data)


def parse_query(spec: RouteSpec, request: Request) -> dict:
    if spec.query is None:
        return {}
    # a form's empty field (`?phone=&name=ana`) asks for nothing
    return _load(spec.query, {k: v for k, v in request.args.to_dict().items() if v != ""})


def _load(schema: type[Schema], values: dict) -> dict:
    """Load `values` with `schema`; text no service could store is refused with the rest of
    what is wrong, so one answer names every field to mend."""
    unstorable_fields = _unstorable_fields(values)
    try:
        loaded = _instance(schema).load(values)
    except ValidationError as exc:
        if unstorable_fields:
            raise ValidationError({**_fields(exc.messages), **unstorable_fields}) from None
        raise
    if unstorable_fields:
        raise ValidationError(unstorable_fields)
    return loaded


def _unstorable_fields(values: dict) -> dict[str, list[str]]:
    # found here, before any service is asked: the database driver's refusal would
    # otherwise come back as a 500, or after part of the work was done
    return {
        path: ["holds a NUL character or half of a surrogate pair"]
        for path in paths_where(values, unstorable)
    }


def refuse_unstorable_text(values: dict) -> None:
    """A 400 naming every field (nested ones dotted) whose text no service could store."""
    unstorable_fields = _unstorable_fields(values)
    if unstorable_fields:
        raise ValidationError(unstorable_fields)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    # made once per schema: making one copies every field, which costs more than a load
    return schema()


def serve(service, spec: RouteSpec, handler, request: Request, path_values: dict) -> Response:
    """Run one endpoint through the contract's steps. `service` is the gateway instance."""
    started = time.perf_counter()
    status = 500
    try:
        if (request.content_length or 0) > MAX_BODY_BYTES or _chunked_body_too_large(request):
            raise HttpError("PAYLOAD_TOO_LARGE", "the body is larger than 1 MiB")
        principal = auth.principal_from(request, service.signing_key) if spec.roles else None
        service.rate_limiter.check(request, principal)
        if spec.roles and principal is None:
            raise HttpError("UNAUTHORIZED", "a valid bearer token is required")
        if spec.roles and principal.role not in spec.roles:
            raise HttpError(
                "FORBIDDEN", f"this needs one of the roles: {', '.join(sorted(spec.roles))}"
            )
        refuse_unstorable_text(path_values)
        call = Call(
            request=request,
            principal=principal,
            path=path_values,
            query=parse_query(spec, request),
            body=parse_body(spec, request),
            idempotency_key=_idempotency_key(spec, request, principal, path_values),
        )
        result = handler(service, call)
        if isinstance(result, Response):
            status = result.status_code
            return result
        status = spec.status
        return json_response(status, result)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        error = as_http_error(exc)
        status = STATUS[error.code]
        return error_response(error)
    finally:
        HTTP_REQUESTS.labels(spec.method, spec.path, str(status)).inc()
        HTTP_DURATION.labels(spec.method, spec.path).observe(time.perf_counter() - started)


def _chunked_body_too_large(request: Request) -> bool:
    """A chunked body declares no length to check up front. The server de-chunks it and
    ends it, but werkzeug reads such a body only when told so (else it sees none, and a
    client's JSON would be taken for `{}`): read it now, one byte past the cap at most."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.content_length is not None or not chunked:
        return False
    request.environ["wsgi.input_terminated"] = True
    request.max_content_length = MAX_BODY_BYTES + 1
    return len(request.get_data(cache=True)) > MAX_BODY_BYTES


def _idempotency_key(spec: RouteSpec, request: Request, principal, path_values: dict) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if not spec.idempotent or not key:
        return None
    if len(key) > 128:
        raise HttpError(
            "VALIDATION_ERROR",
            "Idempotency-Key is too long",
            {"Idempotency-Key": ["at most 128 characters"]},
        )
    refuse_unstorable_text({"Idempotency-Key": key})
    # scoped to the caller, so two clients choosing the same key never see each other's
    # answer, and to the resource the path names (its values as read, so /revisits/01 is
    # /revisits/1), so the same key sent for another revisit's outcome records that one
    # rather than replaying the first; hashed, to fit the services' key column whatever
    # the path's length
    who = principal.subject if principal else request.remote_addr
    resource = json.dumps(path_values, sort_keys=True)
    scoped = f"{who}:{spec.method}:{spec.path}:{resource}:{key}"
    return hashlib.sha256(scoped.encode()).hexdigest()

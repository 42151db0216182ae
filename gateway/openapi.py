"""The OpenAPI 3 document, generated from the routes and the schemas that validate them."""

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway.http import ROUTES, RouteSpec
from gateway.schemas.common import Error

_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each field and what is wrong with it",
    401: "No valid bearer token",
    403: "The token's role may not do this",
    404: "Not found",
    409: "Conflict with the current state (CONFLICT, NO_AVAILABILITY or INVALID_STATE)",
    413: "The body is larger than 1 MiB",
    429: "Over the rate limit; see Retry-After",
    503: "A service behind the gateway is down or slow",
}


def build(version: str = "1.0.0") -> dict:
    spec = APISpec(
        title="Hotel customer service and call centre",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "The gateway's HTTP contract. Errors share one shape: `Error`."},
    )
    spec.components.schema("Error", schema=Error)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(route: RouteSpec) -> dict:
    operation: dict = {
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": _operation_id(route),
        "responses": {},
    }
    if route.description:
        operation["description"] = route.description
    parameters = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"type": "integer" if converter == "int" else "string"},
        }
        for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", route.path)
    ]
    if route.query is not None:
        parameters.append({"in": "query", "schema": route.query})
    if route.idempotent:
        parameters.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 128},
                "description": "A retry with the same key returns the first answer.",
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    success: dict = {"description": "OK"}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": route.response}}
    operation["responses"][str(route.status)] = success
    codes = set(route.errors) | {429, 503}
    if route.roles:
        operation["security"] = [{"bearer": []}]
        codes |= {401, 403}
    if route.body is not None or route.query is not None:
        codes |= {400, 413}
    if "<" in route.path:
        codes.add(404)
    for code in sorted(codes):
        operation["responses"][str(code)] = {
            "description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": "Error"}},
        }
    return operation


def _operation_id(route: RouteSpec) -> str:
    words = re.sub(r"<(?:\w+:)?(\w+)>", r"by_\1", route.path).strip("/").replace("-", "_")
    return f"{route.method.lower()}_{words.replace('/', '_') or 'root'}"

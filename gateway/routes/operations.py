"""Tokens, health, metrics, the API's documentation, scheduled jobs run by hand."""

import json
from pathlib import Path

import eventlet
from nameko.web.handlers import http
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from gateway import auth, openapi, staff
from gateway.http import ADMINS, PUBLIC, HttpError, error_response, json_response, route
from gateway.schemas.operations import JobOptions
from gateway.schemas.staff import Token, TokenRequest
from servicekit import settings

HEALTH_TIMEOUT = 2.0

# `POST /admin/jobs/{job}`: which service runs which scheduled job.
JOBS = {
    "birthday-greetings": "notifications",
    "hold-release": "reservations",
    "escalations": "complaints",
    "revisit-reminders": "revisits",
}
DATED_JOB = "birthday-greetings"

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hotel customer service API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""
_STATIC_TYPES = {".css": "text/css", ".js": "application/javascript", ".png": "image/png"}


class OperationsRoutes:
    @route(
        "POST",
        "/auth/token",
        roles=PUBLIC,
        body=TokenRequest,
        response=Token,
        errors=(401,),
        tag="staff",
        summary="Exchange a username and password for a bearer token",
    )
    def issue_token(self, call):
        member = staff.authenticate(self.db, call.body["username"], call.body["password"])
        if member is None:
            raise HttpError("UNAUTHORIZED", "wrong username or password")
        return auth.issue_token(
            self.signing_key, member.id, member.username, member.role, member.department
        )

    @route("GET", "/health", roles=PUBLIC, tag="operations", summary="Every service's state")
    def health(self, call):
        states = self.service_states()
        ok = all(state == "ok" for state in states.values())
        return json_response(
            200 if ok else 503,
            {"status": "ok" if ok else "degraded", "services": states},
        )

    def service_states(self) -> dict[str, str]:
        def probe(service: str) -> tuple[str, str]:
            try:
                answer = self.rpc(service, "health", timeout=HEALTH_TIMEOUT)
                return service, answer.get("status", "down")
            except BaseException:  # a Timeout is what "down" looks like
                return service, "down"

        pool = eventlet.GreenPool()
        states = dict(pool.imap(probe, settings.SERVICES))
        try:
            with eventlet.Timeout(HEALTH_TIMEOUT):
                self.db.execute(text("select 1"))
            states["gateway"] = "ok"
        except BaseException:
            states["gateway"] = "down"
        return states

    @route("GET", "/metrics", roles=PUBLIC, tag="operations", summary="Prometheus metrics")
    def metrics(self, call):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @route("GET", "/openapi.json", roles=PUBLIC, tag="operations", summary="This document")
    def openapi_document(self, call):
        return Response(json.dumps(_openapi_document()), mimetype="application/json")

    @route("GET", "/docs", roles=PUBLIC, tag="operations", summary="The API, browsable")
    def docs(self, call):
        return Response(_DOCS_PAGE, mimetype="text/html")

    @http("GET", "/docs/static/<string:filename>")
    def docs_static(self, request, filename):
        path = Path(swagger_ui_path) / filename
        if Path(filename).suffix not in _STATIC_TYPES or not path.is_file():
            return error_response(HttpError("NOT_FOUND", "no such file"))
        return Response(path.read_bytes(), mimetype=_STATIC_TYPES[path.suffix])

    @route(
        "POST",
        "/admin/jobs/<string:job>",
        roles=ADMINS,
        tag="operations",
        summary="Run a scheduled job now",
        description="Jobs: " + ", ".join(JOBS) + '. `birthday-greetings` takes `{"date"}`.',
        body=JobOptions,
    )
    def run_job(self, call):
        job = call.path["job"]
        if job not in JOBS:
            raise HttpError("NOT_FOUND", f"no job called {job}; the jobs are {', '.join(JOBS)}")
        options = {}
        if "date" in call.body:
            if job != DATED_JOB:
                raise HttpError(
                    "VALIDATION_ERROR",
                    f"{job} takes no date",
                    {"date": [f"only {DATED_JOB} takes a date"]},
                )
            options["date"] = call.body["date"].isoformat()
        return self.rpc(JOBS[job], "run_job", job, options, timeout=30)

    @http("GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS", "/<path:unknown>")
    def unknown_path(self, request, unknown):
        return error_response(HttpError("NOT_FOUND", f"no such path: /{unknown}"))

    @http("GET", "/")
    def root(self, request):
        return json_response(
            200, {"docs": "/docs", "openapi": "/openapi.json", "health": "/health"}
        )


_document: dict | None = None


def _openapi_document() -> dict:
    global _document
    if _document is None:
        _document = openapi.build()
    return _document

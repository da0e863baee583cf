"""Refusals as Problem bodies: every vibrasense error, validation error and HTTP error becomes a 4xx (or 503).

The domain modules raise the project's errors and know no HTTP status; the status of each is decided here,
once, most specific class first. A Problem names the field at fault (``recordings[2].shaft_hz``,
``machine_id``, ``body``) and what to do.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from vibrasense.errors import ConfigError, InputError, ModelError, StoreError, VibrasenseError, redact
from vibrasense.serving.model import ModelUnavailable
from vibrasense.serving.recordings import RecordingTooLarge, UnsupportedFormat
from vibrasense.serving.schemas import SAMPLES_ERRORS, Problem

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that left before its request was complete: logged and counted, never a 500."""


class NotFound(InputError):
    """The resource named by a path parameter does not exist."""


class Unauthorized(InputError):
    """The API key is missing or wrong."""


class Forbidden(InputError):
    """The endpoint is disabled because no API key is configured."""


STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (UnsupportedFormat, 415),
    (RecordingTooLarge, 413),
    (ModelUnavailable, 503),
    (StoreError, 503),
    (InputError, 422),
    (ModelError, 422),
    (ConfigError, 400),
)
BAD_INPUT = frozenset({413, 415, 422})
"""Statuses counted as refused recordings (by field) in the metrics."""

RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": HTTPStatus(status).phrase} for status in (400, 413, 415, 422, 503)
}
"""The Problem responses every operation may answer, for the OpenAPI."""


def status_of(error: Exception) -> int:
    """The HTTP status of a vibrasense error."""
    return next((status for kind, status in STATUS if isinstance(error, kind)), 400)


def problem_response(request: Request, status: int, error: str, field: str | None, detail: str) -> JSONResponse:
    """A Problem body (any password in it hidden); refused input is counted by field in the service's metrics."""
    if field is not None and status in BAD_INPUT:
        request.app.state.service.metrics.reject(field)
    return JSONResponse(Problem(error=error, field=field, detail=redact(detail)).model_dump(), status_code=status)


def validation_problem(error: ValidationError | RequestValidationError, prefix: str = "") -> InputError:
    """The first error of a validation as an :class:`InputError` naming the field (``recordings[1].samples``)."""
    return field_problem(error.errors()[0], prefix)


def field_problem(detail: Any, prefix: str = "") -> InputError:
    """One pydantic error (``loc``, ``msg``, ``input``) as an :class:`InputError` naming the field."""
    location = list(detail["loc"])
    if location and location[0] in ("body", "query", "path", "header", "cookie"):
        location = location[1:]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    name = prefix + field if field else prefix.rstrip(".") or "body"
    if detail.get("type") in SAMPLES_ERRORS:  # the input is the placeholder of the parsed array: the message says it
        kind = RecordingTooLarge if detail["type"] == "too_many_samples" else InputError
        return kind(name, detail["msg"])
    return InputError(name, f"{detail['msg']} (got {_preview(detail.get('input'))})")


def install(app: FastAPI) -> None:
    """Answer every vibrasense error, request validation error and HTTP error of ``app`` with a Problem."""

    async def vibrasense_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, VibrasenseError)
        if isinstance(error, InputError):
            return problem_response(request, status_of(error), type(error).__name__, error.source, error.reason)
        return problem_response(request, status_of(error), type(error).__name__, None, str(error))

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problem = validation_problem(error)
        return problem_response(request, 422, "InputError", problem.source, problem.reason)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == CLIENT_CLOSED_REQUEST:  # nobody is left to read an answer
            log.info("%s %s: %s", request.method, request.url.path, error.detail)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        field = getattr(error, "field", None)
        response = problem_response(
            request, error.status_code, HTTPStatus(error.status_code).phrase, field, str(error.detail)
        )
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    app.add_exception_handler(VibrasenseError, vibrasense_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

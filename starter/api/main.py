"""The API application: its routers, and the one mapping from service errors to HTTP answers, so routes stay
thin (they call the service layer and let its errors through)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from models.api import Problem
from models.definitions import DefinitionError, pydantic_errors
from models.history import RunNotFound
from models.recordstore import RecordMissing
from starter.api.routes import automations, events, info, runs
from starter.automations import ActiveCapReached, AutomationNotFound, PermissionDenied, PlanLimit
from starter.inbox import EventConflict
from starter.intake import EventRefused

DESCRIPTION = """
Manage the automations of your company, read their run history, and send entity events.

Every request acts as a user of a company: send `Authorization: Bearer <API token>` (`automations token --user ID`
prints one). Nothing ever reads or writes across companies: another company's ids answer 404.
Errors: `{"detail": "…"}`, or for invalid input (422) `{"detail": [{"path": "steps[0].params.due", "message": …}]}`.
"""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": description} for code, description in (
        (401, "Missing or unknown API token"), (403, "Not allowed (permissions, plan)"),
        (404, "Not found in your company"), (409, "Conflicts with the current state"),
        (422, "Invalid input, one entry per problem with its path"))
}


def _problem(status_code: int) -> Callable[[Request, Exception], JSONResponse]:
    def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_code)

    return handler


def _invalid(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # ('body', 'steps', 0, 'action') -> 'steps[0].action'; a query or path parameter by its name.
    details = [{**e, "loc": tuple(e["loc"][1:]) or ("(body)",)} for e in exc.errors()]
    return _invalid(pydantic_errors(details))


def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DefinitionError | EventRefused)
    return _invalid(exc.errors)


def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataError)
    # e.g. text with a NUL character: PostgreSQL refuses it; the transaction was rolled back.
    reason = str(exc.orig).splitlines()[0] if exc.orig else "value out of range"
    return _invalid([{"path": "(body)", "message": f"a value cannot be stored: {reason}"}])


def create_app() -> FastAPI:
    app = FastAPI(title="CRM automations", version="1", description=DESCRIPTION, responses=ERROR_RESPONSES)
    for router in (automations.router, runs.router, events.router, info.router):
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(DefinitionError, _refused)
    app.add_exception_handler(EventRefused, _refused)
    app.add_exception_handler(DataError, _unstorable)
    for exc_type, code in ((PermissionDenied, 403), (PlanLimit, 403), (ActiveCapReached, 409),
                           (EventConflict, 409), (AutomationNotFound, 404), (RunNotFound, 404),
                           (RecordMissing, 404)):
        app.add_exception_handler(exc_type, _problem(code))
    return app


app = create_app()

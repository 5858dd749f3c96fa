"""Run history: runs by automation, record, status, event and time range; one run with its steps."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from models.api import RunDetail, RunStatus, RunSummary
from models.events import EntityType
from models.history import find_run, list_runs, run_steps
from starter.api.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/runs", tags=["run history"])
_MAX_ID = 2_147_483_647


@router.get("")
def list_company_runs(
    session: SessionDep, user: CurrentUser,
    automation_id: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
    entity: EntityType | None = None,
    record_id: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="With `entity`: one record's runs")] = None,
    status: RunStatus | None = None,
    event_id: Annotated[uuid.UUID | None, Query(description="The runs one event started")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Started at or after (ISO 8601, with a zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Started before (ISO 8601, with a zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RunSummary]:
    """Your company's runs, newest first."""
    runs = list_runs(session, company_id=user.company_id, automation_id=automation_id, entity=entity,
                     record_id=record_id, status=status, event_id=str(event_id) if event_id else None,
                     since=since, until=until, limit=limit, offset=offset)
    return [RunSummary.of(r) for r in runs]


@router.get("/{run_id}")
def read_run(session: SessionDep, user: CurrentUser,
             run_id: Annotated[str, Path(min_length=8, max_length=200,
                                         description="A run id, or its start as lists show it")]) -> RunDetail:
    """One run with its steps (timestamps, rendered params, outputs, errors, condition evaluations) and a link
    to it in the Temporal UI."""
    run = find_run(session, run_id, company_id=user.company_id)
    return RunDetail.with_steps(run, run_steps(session, run.id))

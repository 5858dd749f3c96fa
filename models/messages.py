"""What crosses the workflow/activity boundary: the run workflow's input and its activities' messages.

No secrets and no credentials ever go in here: everything in these models lands in Temporal's history.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from models.definitions import AutomationDefinition
from models.events import EntityEvent


class RunInput(BaseModel):
    automation_id: int
    automation_version: int
    owner_id: int
    definition: AutomationDefinition
    event: EntityEvent
    #: Set by intake when loop protection cuts this firing: the run records `stopped` and ends.
    stop_reason: str | None = None
    #: Steps whose action calls an outside service: step index -> the task queue of its family.
    external_steps: dict[int, str] = Field(default_factory=dict)


class StepPlan(BaseModel):
    kind: str  # action | delay
    action: str | None = None


class RunRecord(BaseModel):
    """Insert-or-update of a run's row; on first insert also its pending step rows."""

    run_id: str
    automation_id: int
    automation_version: int
    automation_name: str
    event: EntityEvent
    status: str
    reason: str | None = None
    conditions: dict[str, Any] | None = None
    steps: list[StepPlan] = Field(default_factory=list)
    finished: bool = False


class StepRecord(BaseModel):
    """A step outcome the workflow decides itself: skipped by `when`, failed after retries, a delay done."""

    run_id: str
    step_index: int
    status: str
    error_type: str | None = None
    error_message: str | None = None
    conditions: dict[str, Any] | None = None
    #: Also move the run to this status, in the same transaction.
    run_status: str | None = None


class DelayEnded(BaseModel):
    """A delay step's timer fired: check the automation and record the step (v0.2, one transaction)."""

    run_id: str
    step_index: int
    automation_id: int


class StepInput(BaseModel):
    run_id: str
    step_index: int
    action: str
    params: dict[str, Any]
    automation_id: int
    owner_id: int
    event: EntityEvent


class StepOutcome(BaseModel):
    status: str
    output: dict[str, Any] = Field(default_factory=dict)


class RunOutcome(BaseModel):
    status: str
    reason: str | None = None
    steps: list[str] = Field(default_factory=list)

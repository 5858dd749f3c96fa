"""The HTTP API's schemas: what it reads and returns, beside the tables (models/tables.py) they show."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.definitions import AutomationDefinition, Trigger
from models.events import EntityEvent, EntityType, RecordId, TriggerAction
from models.settings import get_settings
from models.tables import Automation, AutomationRun, StepResult

RunStatus = Literal["running", "waiting", "succeeded", "failed", "skipped", "stopped"]


class ErrorDetail(BaseModel):
    """One problem with the input: where (e.g. `steps[0].params.due.in`) and what."""

    path: str
    message: str


class Problem(BaseModel):
    """Every 4xx answer: a sentence, or (422) one entry per problem."""

    detail: str | list[ErrorDetail]


class Me(BaseModel):
    user_id: int
    name: str
    company_id: int
    can_manage_automations: bool


class AutomationSummary(BaseModel):
    id: int
    name: str
    description: str
    trigger: Trigger
    active: bool
    #: Lists show inactive automations flagged as such.
    status: Literal["active", "inactive"]
    owner_id: int
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, automation: Automation) -> AutomationSummary:
        assert automation.id is not None
        return cls(id=automation.id, name=automation.name, description=automation.description,
                   trigger=Trigger.model_validate({"entity": automation.trigger_entity,
                                                   "action": automation.trigger_action}),
                   active=automation.active, status="active" if automation.active else "inactive",
                   owner_id=automation.owner_id, version=automation.version, created_at=automation.created_at,
                   updated_at=automation.updated_at)


class AutomationDetail(AutomationSummary):
    #: The current version's definition (its `active` is the automation's state now).
    definition: AutomationDefinition

    @classmethod
    def with_definition(cls, automation: Automation, definition: AutomationDefinition) -> AutomationDetail:
        summary = AutomationSummary.of(automation)
        return cls(**summary.model_dump(), definition=definition.model_copy(update={"active": automation.active}))


class ValidationReport(BaseModel):
    valid: bool
    errors: list[ErrorDetail] = Field(default_factory=list)


class ActionTypeInfo(BaseModel):
    name: str
    description: str
    #: Calls an outside service (runs on its family's rate-limited task queue).
    external: bool
    #: JSON Schema of the action's `params`; values may also be merge fields like "{{deal.title}}".
    params_schema: dict[str, Any]


# --- test runs ("what would happen") --------------------------------------------------------------


class RunPreviewRequest(BaseModel):
    """A sample event (S2 fields: `entity_id` and the record are needed, the others default to your company, the
    automation's trigger, a new event id, now, source `app` and you as the user), or an existing record of the
    trigger's type as the event's record."""

    model_config = ConfigDict(extra="forbid")
    event: dict[str, Any] | None = None
    record_id: RecordId | None = None
    #: With `record_id` on an `updated` trigger: the old values of the fields that changed.
    previous: dict[str, Any] | None = None
    #: With `record_id`: who made the change (default: you).
    user_id: RecordId | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RunPreviewRequest:
        if (self.event is None) == (self.record_id is None):
            raise ValueError("give exactly one of `event` (a sample event) or `record_id` (an existing record)")
        if self.event is not None and (self.previous is not None or self.user_id is not None):
            raise ValueError("`previous` and `user_id` go inside `event` when testing with a sample event")
        return self


class StepPreview(BaseModel):
    index: int
    kind: Literal["action", "delay"]
    action: str | None = None
    #: would_run: conditions hold and params render and validate (the action itself is not executed);
    #: would_fail: the step would fail before acting (a missing merge field, invalid params);
    #: skipped: its `when` conditions are false; would_wait: a delay.
    status: Literal["would_run", "would_fail", "skipped", "would_wait"]
    conditions: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    delay: str | None = None


class RunPreview(BaseModel):
    automation_id: int
    automation_version: int
    event: EntityEvent
    #: Whether the event starts a run of this automation at all (trigger, active, source, run_for).
    fires: bool
    #: The run's status as a real run would record it, as far as it is decided before actions execute.
    status: Literal["not_fired", "stopped", "skipped", "succeeded", "failed"]
    reason: str | None = None
    #: The trigger conditions, leaf by leaf, with the values compared (as stored on a real run).
    conditions: dict[str, Any] | None = None
    steps: list[StepPreview] = Field(default_factory=list)


# --- run history ----------------------------------------------------------------------------------


def temporal_ui_url(run_id: str) -> str:
    settings = get_settings()
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{run_id}"


class RunSummary(BaseModel):
    id: str
    automation_id: int
    automation_version: int
    automation_name: str
    event_id: str
    entity: str
    entity_id: int
    trigger_action: str
    status: str
    reason: str | None
    chain_depth: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    temporal_ui_url: str

    @classmethod
    def of(cls, run: AutomationRun) -> RunSummary:
        return cls(**run.model_dump(exclude={"company_id", "conditions", "event"}),
                   temporal_ui_url=temporal_ui_url(run.id))


class StepView(BaseModel):
    index: int
    kind: str
    action: str | None
    status: str
    attempts: int
    params: dict[str, Any] | None
    output: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    conditions: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, step: StepResult) -> StepView:
        return cls(index=step.step_index, **step.model_dump(exclude={"run_id", "step_index"}))


class RunDetail(RunSummary):
    conditions: dict[str, Any] | None
    event: dict[str, Any]
    steps: list[StepView]

    @classmethod
    def with_steps(cls, run: AutomationRun, steps: list[StepResult]) -> RunDetail:
        return cls(**RunSummary.of(run).model_dump(), conditions=run.conditions, event=run.event,
                   steps=[StepView.of(s) for s in steps])


# --- event intake ---------------------------------------------------------------------------------


class AcceptedEvent(BaseModel):
    event_id: str
    #: Already received: nothing new happens (the same event_id fires each automation once).
    duplicate: bool


class EventsAccepted(BaseModel):
    """Committed to durable intake; runs start within moments (see GET /runs?event_id=…)."""

    accepted: list[AcceptedEvent]


class WebhookReceipt(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    event_id: str | None = None
    entity: EntityType | None = None
    action: TriggerAction | None = None
    entity_id: int | None = None
    reason: str | None = None

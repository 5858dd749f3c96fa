"""The entity event: the engine's input contract (S2)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

EntityType = Literal["deal", "person", "organization", "activity", "lead", "project"]
TriggerAction = Literal["created", "updated", "deleted"]
EventSource = Literal["app", "api", "import", "automation"]
#: Company, record and user ids are PostgreSQL integers: a larger id could never be stored in the run history.
RecordId = Annotated[int, Field(gt=0, le=2_147_483_647)]


class EventChain(BaseModel):
    """Provenance of an automation-caused event, for loop protection (S4.7)."""

    model_config = ConfigDict(extra="forbid")
    depth: int = Field(ge=1)
    automation_ids: list[int] = Field(min_length=1)
    run_id: str


class EntityEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str
    company_id: RecordId
    entity: EntityType
    action: TriggerAction
    entity_id: RecordId
    user_id: RecordId | None = None
    source: EventSource = "app"
    occurred_at: AwareDatetime
    current: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    chain: EventChain | None = None

    @field_validator("event_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("event_id must be a UUID") from None

    @model_validator(mode="after")
    def _shape(self) -> EntityEvent:
        if self.action in ("created", "updated") and self.current is None:
            raise ValueError(f"`current` is required on a {self.action} event")
        if self.action == "updated" and self.previous is None:
            raise ValueError("`previous` (the old values of the changed fields) is required on an updated event")
        if self.action == "deleted":
            if self.current is not None:
                raise ValueError("`current` must be null on a deleted event")
            if self.previous is None:
                raise ValueError("`previous` (the last state) is required on a deleted event")
        state = self.current if self.current is not None else self.previous
        if state is not None and "id" in state and state["id"] != self.entity_id:
            raise ValueError(f"record id {state['id']!r} does not match entity_id {self.entity_id}")
        if (self.source == "automation") != (self.chain is not None):
            raise ValueError("`chain` is set exactly when source is `automation`")
        return self

    @property
    def state(self) -> dict[str, Any]:
        """The record as the event saw it: current, or on delete its last state."""
        return {"id": self.entity_id, **((self.current if self.current is not None else self.previous) or {})}

    @property
    def chain_depth(self) -> int:
        return self.chain.depth if self.chain else 0

    def payload_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def new_event_id() -> str:
    return str(uuid.uuid4())


def make_event(
    *,
    company_id: int,
    entity: str,
    action: str,
    entity_id: int,
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    occurred_at: datetime,
    user_id: int | None = None,
    source: str = "app",
    chain: EventChain | None = None,
) -> EntityEvent:
    return EntityEvent.model_validate(
        {
            "event_id": new_event_id(),
            "company_id": company_id,
            "entity": entity,
            "action": action,
            "entity_id": entity_id,
            "user_id": user_id,
            "source": source,
            "occurred_at": occurred_at,
            "current": current,
            "previous": previous,
            "chain": chain,
        }
    )

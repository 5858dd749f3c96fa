"""SQLModel tables: companies and users, integration connections, the six CRM record types, campaigns,
automations, runs, events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(nullable: bool = False) -> Any:
    # sa_type (not sa_column) so the mixin's column is copied into each table that uses it.
    if nullable:
        return Field(default=None, sa_type=JSONB, nullable=True)
    return Field(default_factory=dict, sa_type=JSONB, nullable=False)


# --- tenants and people using the CRM ---------------------------------------------------------


class Company(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    plan: str = "professional"
    timezone: str = "UTC"
    #: Most open deals the company may hold; None means unlimited.
    open_deal_limit: int | None = None


class User(SQLModel, table=True):
    __tablename__ = "crm_user"
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    name: str
    email: str
    role: str = "regular"
    is_global_admin: bool = False
    #: e.g. {"manage_automations": true}
    permission_set: dict[str, Any] = _json()
    #: The synced mailbox emails are sent from: {"connection_id": 3, "address": "ada@acme.example"}; the
    #: connection (SMTP or Microsoft Graph) holds the transport settings and, encrypted, its secrets.
    mailbox: dict[str, Any] | None = _json(nullable=True)


class IntegrationConnection(SQLModel, table=True):
    """A company's account at an outside service (Slack, Teams, Trello, Asana, a mailbox, a webhook target).

    `settings` are plain (URLs, ids, user names); `secret` is the Fernet token of a JSON object of secrets
    (tokens, passwords, a webhook URL carrying its signature), decrypted only inside the activity that uses it.
    """

    __tablename__ = "integration_connection"
    __table_args__ = (UniqueConstraint("company_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    provider: str  # one of models.connections.PROVIDERS
    name: str
    settings: dict[str, Any] = _json()
    secret: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class CustomFieldDefinition(SQLModel, table=True):
    """A company's custom field on one entity type; values live in the record's `custom_fields`."""

    __table_args__ = (UniqueConstraint("company_id", "entity", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    entity: str
    key: str
    name: str
    field_type: str  # one of FIELD_TYPES in models.fields


# --- the six record types ----------------------------------------------------------------------


class RecordBase(SQLModel):
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    owner_id: int | None = None
    custom_fields: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class Organization(RecordBase, table=True):
    name: str
    address: str | None = None


class Person(RecordBase, table=True):
    name: str
    email: str | None = None
    phone: str | None = None
    organization_id: int | None = None


class Deal(RecordBase, table=True):
    title: str
    value: float = 0
    currency: str = "EUR"
    status: str = "open"  # open | won | lost
    pipeline_id: int | None = None
    stage_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    expected_close_date: date | None = None


class Lead(RecordBase, table=True):
    title: str
    value: float | None = None
    person_id: int | None = None
    organization_id: int | None = None
    is_archived: bool = False


class Activity(RecordBase, table=True):
    subject: str
    type: str = "task"
    due_date: date | None = None
    done: bool = False
    note: str | None = None
    deal_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    lead_id: int | None = None
    project_id: int | None = None


class Project(RecordBase, table=True):
    title: str
    status: str = "open"
    deal_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    start_date: date | None = None
    end_date: date | None = None


ENTITY_TABLES: dict[str, type[RecordBase]] = {
    "deal": Deal,
    "person": Person,
    "organization": Organization,
    "activity": Activity,
    "lead": Lead,
    "project": Project,
}


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    name: str


class CampaignMember(SQLModel, table=True):
    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    added_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


# --- automations -------------------------------------------------------------------------------


class Automation(SQLModel, table=True):
    """The mutable head of an automation; its definitions live in immutable `AutomationVersion` rows."""

    __table_args__ = (
        # Trigger matching reads exactly the active automations of one company x entity x action.
        Index("ix_automation_trigger", "company_id", "trigger_entity", "trigger_action", "active"),
    )
    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id")
    owner_id: int = Field(foreign_key="crm_user.id")
    name: str
    description: str = ""
    trigger_entity: str
    trigger_action: str
    active: bool = True
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class AutomationVersion(SQLModel, table=True):
    automation_id: int = Field(foreign_key="automation.id", primary_key=True)
    version: int = Field(primary_key=True)
    definition: dict[str, Any] = _json()
    created_by: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


# --- runs --------------------------------------------------------------------------------------


class AutomationRun(SQLModel, table=True):
    """One firing (automation x event): the Temporal workflow's record in the run history."""

    __table_args__ = (
        UniqueConstraint("automation_id", "event_id"),
        Index("ix_run_company_automation", "company_id", "automation_id", "started_at"),
        Index("ix_run_company_record", "company_id", "entity", "entity_id"),
        Index("ix_run_company_status", "company_id", "status"),
        Index("ix_run_started", "started_at"),
    )
    id: str = Field(primary_key=True)  # the Temporal workflow id
    company_id: int
    automation_id: int
    automation_version: int
    automation_name: str
    event_id: str
    entity: str
    entity_id: int
    trigger_action: str
    status: str  # running | waiting | succeeded | failed | skipped | stopped
    reason: str | None = None
    conditions: dict[str, Any] | None = _json(nullable=True)
    event: dict[str, Any] = _json()
    chain_depth: int = 0
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


class StepResult(SQLModel, table=True):
    run_id: str = Field(foreign_key="automationrun.id", primary_key=True, ondelete="CASCADE")
    step_index: int = Field(primary_key=True)
    kind: str  # action | delay
    action: str | None = None
    status: str = "pending"  # pending | succeeded | failed | skipped
    attempts: int = 0
    params: dict[str, Any] | None = _json(nullable=True)
    output: dict[str, Any] | None = _json(nullable=True)
    error_type: str | None = None
    error_message: str | None = None
    conditions: dict[str, Any] | None = _json(nullable=True)
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


# --- events ------------------------------------------------------------------------------------


class ReceivedEvent(SQLModel, table=True):
    """Intake's memory of an event: which automation versions it matched, so redelivery fires the same set."""

    event_id: str = Field(primary_key=True)
    company_id: int = Field(index=True)
    payload_hash: str
    matched: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)  # type: ignore[call-overload]


class EventOutbox(SQLModel, table=True):
    """Events of writes made through the record service, committed with the write; the relay publishes them."""

    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )
    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    event_id: str = Field(unique=True)
    company_id: int
    payload: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]


# --- API access --------------------------------------------------------------------------------


class ApiToken(SQLModel, table=True):
    """A user's API token. Only its SHA-256 is stored: the token itself is shown once, when issued."""

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    user_id: int = Field(foreign_key="crm_user.id", index=True)
    name: str
    token_hash: str = Field(unique=True)
    #: The token's first characters, to tell tokens apart in listings.
    prefix: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]

"""Managing automations: validation at save time, immutable versions, permissions and plan limits (S3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.registry import check_params
from models.definitions import ActionStep, AutomationDefinition, DefinitionError, check_definition, parse_definition
from models.settings import get_settings
from models.tables import Automation, AutomationVersion, Company, CustomFieldDefinition, User, utcnow


class PermissionDenied(Exception):
    pass


class PlanLimit(Exception):
    pass


class ActiveCapReached(PlanLimit):
    """The plan's cap of active automations is reached: deactivating another one makes room."""


class AutomationNotFound(LookupError):
    pass


def custom_fields_of(session: Session, company_id: int, entity: str) -> dict[str, str]:
    rows = session.exec(select(CustomFieldDefinition).where(
        CustomFieldDefinition.company_id == company_id, CustomFieldDefinition.entity == entity)).all()
    return {r.key: r.field_type for r in rows}


def validate_definition(session: Session, company_id: int, raw: dict[str, Any]) -> AutomationDefinition:
    """Every save-time check; raises DefinitionError listing each problem with its path."""
    definition = parse_definition(raw)
    settings = get_settings()
    errors = check_definition(definition, timedelta(days=settings.max_delay_days),
                              custom_fields_of(session, company_id, definition.trigger.entity))
    for index, step in enumerate(definition.steps):
        if isinstance(step, ActionStep):
            errors += check_params(step.action, step.params, definition.trigger.entity, f"steps[{index}]")
    if errors:
        raise DefinitionError(errors)
    return definition


def _company(session: Session, actor: User) -> Company:
    company = session.get(Company, actor.company_id)
    assert company is not None
    return company


def can_manage(actor: User) -> bool:
    """Global admins, and users whose permission set allows it, may create, edit, delete and (de)activate."""
    return bool(actor.is_global_admin or actor.permission_set.get("manage_automations"))


def check_can_manage(session: Session, actor: User) -> None:
    if not can_manage(actor):
        raise PermissionDenied(f"user {actor.id} is neither a global admin nor allowed to manage automations "
                               "by their permission set")
    plan = _company(session, actor).plan
    if plan not in get_settings().plan_limits:
        raise PlanLimit(f"automations are not available on the {plan} plan "
                        f"(available on: {', '.join(get_settings().plan_limits)})")


def _check_active_cap(session: Session, company: Company, exclude_id: int | None = None) -> None:
    cap = get_settings().plan_limits[company.plan]
    query = select(func.count()).select_from(Automation).where(
        Automation.company_id == company.id, col(Automation.active).is_(True))
    if exclude_id is not None:
        query = query.where(Automation.id != exclude_id)
    active = session.exec(query).one()
    if active >= cap:
        raise ActiveCapReached(f"the {company.plan} plan allows {cap} active automations and the company has "
                               f"{active}: deactivate one first")


def get_automation(session: Session, company_id: int, automation_id: int, *, lock: bool = False) -> Automation:
    query = select(Automation).where(Automation.id == automation_id, Automation.company_id == company_id)
    automation = session.exec(query.with_for_update() if lock else query).first()
    if automation is None:
        raise AutomationNotFound(f"automation {automation_id} not found")
    return automation


def list_automations(session: Session, company_id: int, owner_id: int | None = None) -> list[Automation]:
    """The company's automations (or one owner's), active ones first, then by name."""
    query = select(Automation).where(Automation.company_id == company_id)
    if owner_id is not None:
        query = query.where(Automation.owner_id == owner_id)
    return list(session.exec(query.order_by(col(Automation.active).desc(), col(Automation.name),
                                            col(Automation.id))).all())


def current_definition(session: Session, automation: Automation) -> AutomationDefinition:
    """The definition of the automation's current version (the one new events fire)."""
    version = session.get(AutomationVersion, (automation.id, automation.version))
    assert version is not None, f"automation {automation.id} has no version {automation.version}"
    return AutomationDefinition.model_validate(version.definition)


def save_automation(session: Session, actor: User, raw: dict[str, Any],
                    automation_id: int | None = None) -> Automation:
    """Create an automation, or give an existing one a new version. Runs in flight keep their version.

    A new version without `active` keeps the automation's current state: editing never switches it on or off."""
    check_can_manage(session, actor)
    company = _company(session, actor)
    assert actor.id is not None and company.id is not None
    if automation_id is not None and "active" not in raw:
        raw = {**raw, "active": get_automation(session, company.id, automation_id).active}
    definition = validate_definition(session, company.id, raw)
    # The company row lock makes the active-automation cap hold under concurrent saves.
    session.exec(select(Company).where(Company.id == company.id).with_for_update()).one()
    if automation_id is None:
        if definition.active:
            _check_active_cap(session, company)
        automation = Automation(company_id=company.id, owner_id=actor.id, name=definition.name,
                                description=definition.description, trigger_entity=definition.trigger.entity,
                                trigger_action=definition.trigger.action, active=definition.active, version=1)
        session.add(automation)
        session.flush()
    else:
        automation = get_automation(session, company.id, automation_id, lock=True)
        if definition.active and not automation.active:
            _check_active_cap(session, company, exclude_id=automation.id)
        automation.version += 1
        automation.name, automation.description = definition.name, definition.description
        automation.trigger_entity, automation.trigger_action = definition.trigger.entity, definition.trigger.action
        automation.active, automation.updated_at = definition.active, utcnow()
        session.add(automation)
    assert automation.id is not None
    session.add(AutomationVersion(automation_id=automation.id, version=automation.version,
                                  definition=definition.model_dump(mode="json", by_alias=True, exclude_none=True),
                                  created_by=actor.id))
    session.flush()
    return automation


def set_active(session: Session, actor: User, automation_id: int, active: bool) -> Automation:
    check_can_manage(session, actor)
    company = _company(session, actor)
    assert company.id is not None
    session.exec(select(Company).where(Company.id == company.id).with_for_update()).one()
    automation = get_automation(session, company.id, automation_id, lock=True)
    if active and not automation.active:
        _check_active_cap(session, company, exclude_id=automation_id)
    automation.active, automation.updated_at = active, utcnow()
    session.add(automation)
    session.flush()
    return automation


def delete_automation(session: Session, actor: User, automation_id: int) -> None:
    """Delete an automation and its versions; its run history stays, and delayed runs stop."""
    check_can_manage(session, actor)
    automation = get_automation(session, actor.company_id, automation_id, lock=True)
    for version in session.exec(select(AutomationVersion).where(AutomationVersion.automation_id == automation_id)):
        session.delete(version)
    session.flush()
    session.delete(automation)
    session.flush()

"""Automations: list, read, create, update (a new version), delete, (de)activate, validate, test-run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response, status

from models.api import (
    AutomationDetail,
    AutomationSummary,
    ErrorDetail,
    RunPreview,
    RunPreviewRequest,
    ValidationReport,
)
from models.definitions import AutomationDefinition, DefinitionError
from starter.api.deps import AutomationId, CurrentUser, SessionDep
from starter.automations import (
    current_definition,
    delete_automation,
    get_automation,
    list_automations,
    save_automation,
    set_active,
    validate_definition,
)
from starter.testrun import preview_run

router = APIRouter(prefix="/automations", tags=["automations"])


def _raw(definition: AutomationDefinition) -> dict[str, Any]:
    # Only what the client sent: an update without `active` keeps the automation's state.
    return definition.model_dump(mode="json", by_alias=True, exclude_unset=True)


@router.get("")
def list_company_automations(session: SessionDep, user: CurrentUser,
                             scope: Literal["all", "mine"] = "all") -> list[AutomationSummary]:
    """The company's automations (`scope=mine`: the ones you own), active first; inactive ones are flagged."""
    owner = user.id if scope == "mine" else None
    return [AutomationSummary.of(a) for a in list_automations(session, user.company_id, owner)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_automation(session: SessionDep, user: CurrentUser, definition: AutomationDefinition) -> AutomationDetail:
    """Create an automation (you become its owner). Global admins and users whose permission set allows it only."""
    automation = save_automation(session, user, _raw(definition))
    return AutomationDetail.with_definition(automation, current_definition(session, automation))


@router.post("/validate")
def validate_automation(session: SessionDep, user: CurrentUser,
                        definition: Annotated[dict[str, Any], Body(description="An automation definition, as for "
                                                                              "POST /automations")],
                        ) -> ValidationReport:
    """Check a definition without saving it: every problem with its path."""
    try:
        validate_definition(session, user.company_id, definition)
    except DefinitionError as err:
        return ValidationReport(valid=False, errors=[ErrorDetail.model_validate(e) for e in err.errors])
    return ValidationReport(valid=True)


@router.get("/{automation_id}")
def read_automation(session: SessionDep, user: CurrentUser, automation_id: AutomationId) -> AutomationDetail:
    automation = get_automation(session, user.company_id, automation_id)
    return AutomationDetail.with_definition(automation, current_definition(session, automation))


@router.put("/{automation_id}")
def update_automation(session: SessionDep, user: CurrentUser, automation_id: AutomationId,
                      definition: AutomationDefinition) -> AutomationDetail:
    """Save a new version. Runs already started keep the version they started with; without `active`, the
    automation stays on or off as it is."""
    automation = save_automation(session, user, _raw(definition), automation_id)
    return AutomationDetail.with_definition(automation, current_definition(session, automation))


@router.delete("/{automation_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_automation(session: SessionDep, user: CurrentUser, automation_id: AutomationId) -> Response:
    """Delete an automation; its run history stays, and its delayed runs stop after their delay."""
    delete_automation(session, user, automation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{automation_id}/activate")
def activate_automation(session: SessionDep, user: CurrentUser, automation_id: AutomationId) -> AutomationSummary:
    """Switch on; refused (409) when the plan's cap of active automations is reached."""
    return AutomationSummary.of(set_active(session, user, automation_id, True))


@router.post("/{automation_id}/deactivate")
def deactivate_automation(session: SessionDep, user: CurrentUser, automation_id: AutomationId) -> AutomationSummary:
    """Switch off: new events no longer fire it, and its delayed runs stop after their delay."""
    return AutomationSummary.of(set_active(session, user, automation_id, False))


@router.post("/{automation_id}/test-run")
def test_run(session: SessionDep, user: CurrentUser, automation_id: AutomationId,
             request: RunPreviewRequest) -> RunPreview:
    """What would happen for a sample event or an existing record: which conditions hold and why, and every
    action's rendered params. No action is executed and nothing is written."""
    return preview_run(session, user, automation_id, request)

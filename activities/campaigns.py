"""`campaign.add_person`: the trigger's person (or the trigger record's person) joins a campaign list, once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from activities.context import ActionContext
from activities.errors import RecordNotFound
from activities.registry import action
from models.fields import relations
from models.recordstore import get_record
from models.tables import Campaign, CampaignMember


class AddPersonParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: int
    #: An explicit person id (usually a merge field); default: the trigger person, or the trigger's person.
    person_id: int | None = None


def _check(params: Any, trigger_entity: str) -> list[dict[str, str]]:
    if params.person_id is None and trigger_entity != "person" and "person" not in relations(trigger_entity):
        return [{"path": "person_id", "message": f"a {trigger_entity} trigger has no person: set `person_id`"}]
    return []


@action("campaign.add_person", AddPersonParams, check=_check,
        description="Add the trigger's person to a campaign list (already a member: nothing changes).")
def add_person(ctx: ActionContext, params: AddPersonParams) -> dict[str, Any]:
    company_id = ctx.company.id or 0
    campaign = ctx.session.get(Campaign, params.campaign_id)
    if campaign is None or campaign.company_id != company_id:
        raise RecordNotFound(f"campaign {params.campaign_id} does not exist")
    person_id = params.person_id if params.person_id is not None else ctx.target_id("person", None, None)
    get_record(ctx.session, company_id, "person", person_id)  # RecordNotFound when it is not the company's
    added = ctx.session.execute(insert(CampaignMember).values(
        campaign_id=campaign.id, person_id=person_id, company_id=company_id).on_conflict_do_nothing()
        .returning(col(CampaignMember.person_id))).first()
    return {"campaign_id": campaign.id, "person_id": person_id, "added": added is not None}

"""The demo company `make run` loads: users, a pipeline's deals, and a few automations; then demo events."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.connections import save_connection
from models.recordstore import create_record, update_record
from models.tables import Automation, Company, CustomFieldDefinition, Deal, User
from starter.automations import save_automation
from starter.fakes import TRELLO_LIST_ID, FakeProviders

DEMO_COMPANY = "Acme Demo (automations)"

AUTOMATIONS: list[dict[str, Any]] = [
    {
        "name": "Follow up qualified deals",
        "description": "A deal reaching stage 3 with a value of 1000 or more gets a call and a check-in.",
        "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3},
                               {"field": "value", "op": "gte", "value": 1000}]},
        "steps": [
            {"action": "activity.create",
             "params": {"subject": "Call about {{deal.title}}", "type": "call", "due": {"in": "1 day"}}},
            {"when": {"all": [{"field": "pipeline_id", "op": "eq", "value": 1}]},
             "action": "deal.update", "params": {"pipeline_id": 2}},
            {"when": {"all": [{"field": "custom_fields.region", "op": "eq", "value": "EMEA"}]},
             "action": "person.update", "params": {"phone": "+33 1 00 00 00 00"}},
            {"delay": {"for": "10 seconds"}},
            {"action": "activity.create",
             "params": {"subject": "Check in with {{person.name}} ({{organization.name}})", "type": "task",
                        "due": {"next": "friday"}}},
        ],
    },
    {
        "name": "Welcome new contacts",
        "trigger": {"entity": "person", "action": "created"},
        "conditions": {"all": [{"field": "email", "op": "is_not_empty"}]},
        "steps": [{"action": "activity.create",
                   "params": {"subject": "Intro call with {{person.name}}", "type": "call"}}],
    },
    {
        "name": "Kick off won deals",
        "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "status", "op": "changed_to", "value": "won"}]},
        "steps": [
            {"action": "project.create", "params": {"title": "Onboarding: {{deal.title}}"}},
            {"action": "deal.create", "params": {"title": "Upsell: {{deal.title}}", "value": 500,
                                                 "person_id": "{{deal.person_id}}"}},
            {"action": "deal.create", "params": {"title": "Renewal next year: {{deal.title}}",
                                                 "value": "{{deal.value}}"}},
            {"action": "activity.create", "params": {"subject": "Plan onboarding for {{deal.title}}"}},
        ],
    },
    {
        "name": "Tell the team about stage 3",
        "description": "Slack and Trello (local stand-ins started by the demo) hear of every deal reaching stage 3.",
        "trigger": {"entity": "deal", "action": "updated"},
        "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
        "steps": [
            {"action": "slack.post_message",
             "params": {"channel": "#sales", "text": "{{deal.title}} ({{deal.value}} EUR) reached stage 3"}},
            {"action": "trello.create_card",
             "params": {"list_id": TRELLO_LIST_ID, "name": "Onboard {{deal.title}}", "due": {"in": "3 days"}}},
        ],
    },
]


def load_demo(session: Session) -> tuple[Company, User]:
    """Create the demo company once; later calls find it again."""
    company = session.exec(select(Company).where(Company.name == DEMO_COMPANY)).first()
    if company is not None:
        admin = session.exec(select(User).where(User.company_id == company.id, User.is_global_admin)).one()
        return company, admin
    company = Company(name=DEMO_COMPANY, plan="professional", timezone="Europe/Paris", open_deal_limit=2)
    session.add(company)
    session.flush()
    assert company.id is not None
    admin = User(company_id=company.id, name="Ada Admin", email="ada@acme.example", is_global_admin=True,
                 role="admin")
    rep = User(company_id=company.id, name="Sam Sales", email="sam@acme.example")
    session.add_all([admin, rep])
    session.add(CustomFieldDefinition(company_id=company.id, entity="deal", key="region", name="Region",
                                      field_type="string"))
    session.flush()
    for definition in AUTOMATIONS:
        save_automation(session, admin, definition)
    return company, admin


def connect_fakes(session: Session, company: Company, fakes: FakeProviders) -> None:
    """Point the demo company's Slack and Trello connections at this run's fakes (their port changes)."""
    assert company.id is not None
    values = fakes.connection_values()
    for provider in ("slack", "trello"):
        settings, secrets = values[provider]
        save_connection(session, company.id, provider, f"demo {provider}", settings, secrets)


def fake_report(fakes: FakeProviders) -> list[str]:
    """What the fake Slack and Trello received, in a line each."""
    lines = [f"Slack #{r.json()['channel'].lstrip('#')}: {r.json()['text']}" for r in fakes.received("slack")
             if r.status == 200]
    lines += [f"Trello card: {r.json()['name']} (due {r.json().get('due')})" for r in fakes.received("trello")
              if r.status == 200]
    return lines


def demo_events(session: Session, company: Company, admin: User) -> list[str]:
    """Writes through the record service (so their events go through the outbox). Returns what was done."""
    assert company.id is not None
    cid, uid = company.id, admin.id
    # Room for exactly two more open deals, however many earlier demos left: the won deal's second
    # deal.create then meets the limit on every `make run`.
    already_open = len(session.exec(select(Deal).where(Deal.company_id == cid, Deal.status == "open")).all())
    company.open_deal_limit = already_open + 2
    session.add(company)
    org, _ = create_record(session, cid, "organization", {"name": "Globex"}, user_id=uid)
    person, _ = create_record(session, cid, "person", {"name": "Grace Hopper", "email": "grace@globex.example",
                                                       "organization_id": org.id}, user_id=uid)
    deal, _ = create_record(session, cid, "deal", {"title": "Globex renewal", "value": 5000, "stage_id": 2,
                                                   "pipeline_id": 1, "person_id": person.id,
                                                   "organization_id": org.id,
                                                   "custom_fields": {"region": "EMEA"}}, user_id=uid)
    small, _ = create_record(session, cid, "deal", {"title": "Globex pilot", "value": 300, "stage_id": 2,
                                                    "person_id": person.id}, user_id=uid)
    update_record(session, cid, "deal", deal.id or 0, {"stage_id": 3}, user_id=uid)
    update_record(session, cid, "deal", small.id or 0, {"stage_id": 3}, user_id=uid)
    update_record(session, cid, "deal", small.id or 0, {"status": "won"}, user_id=uid)
    create_record(session, cid, "person", {"name": "Imported Ivan", "email": "ivan@example.com"}, user_id=uid,
                  source="import")
    open_deals = len(session.exec(select(Deal).where(Deal.company_id == cid, Deal.status == "open")).all())
    return [
        f"created organization Globex, person Grace Hopper (fires 'Welcome new contacts'), deals "
        f"{deal.id} and {small.id}",
        f"moved deal {deal.id} (5000) to stage 3: fires 'Follow up qualified deals' (with a 10 s delay)",
        f"moved deal {small.id} (300) to stage 3: a run recorded as skipped (value below 1000)",
        "both moves also fire 'Tell the team about stage 3': a Slack post and a Trello card each, on local fakes",
        f"won deal {small.id}: fires 'Kick off won deals' ({open_deals} open deals now); its second deal.create "
        f"meets the open-deal limit ({company.open_deal_limit}) and fails, the step after it still runs",
        "imported a person (source=import): fires nothing",
    ]


def automation_ids(session: Session, company_id: int) -> list[int]:
    return [a.id for a in session.exec(select(Automation).where(Automation.company_id == company_id)) if a.id]

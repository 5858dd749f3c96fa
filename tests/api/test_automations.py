"""The automations API: authentication, CRUD and versions, permissions, plans and their caps, validation with
paths, action types, and isolation between companies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from models.db import session_scope
from models.settings import get_settings
from models.tables import Automation, User
from starter.tokens import revoke_tokens
from tests.api.conftest import Tenant

SIMPLE: dict[str, Any] = {
    "name": "Follow up", "trigger": {"entity": "deal", "action": "updated"},
    "conditions": {"all": [{"field": "stage_id", "op": "changed_to", "value": 3}]},
    "steps": [{"action": "activity.create", "params": {"subject": "Call about {{deal.title}}", "due": {"in": "1 day"}}},
              {"delay": {"for": "2 days"}}],
}


def create(api: TestClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = api.post("/automations", json={**SIMPLE, **changes}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_requests_need_a_valid_token(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    assert api.get("/health").json() == {"status": "ok"}  # the one endpoint without a token
    missing = api.get("/automations")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert api.get("/automations", headers={"Authorization": "Bearer crm_nope"}).status_code == 401
    assert api.get("/automations", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert api.get("/me", headers=t.admin).json() == {"user_id": t.admin_id, "name": "Admin", "company_id": t.id,
                                                      "can_manage_automations": True}
    with session_scope() as s:
        assert revoke_tokens(s, t.admin_id, "test") == 1
    revoked = api.get("/me", headers=t.admin)
    assert revoked.status_code == 401 and revoked.json() == {"detail": "unknown or revoked API token"}


def test_create_read_update_delete(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    created = create(api, t.admin, description="Deals reaching stage 3")
    assert (created["name"], created["version"], created["owner_id"], created["status"]) == (
        "Follow up", 1, t.admin_id, "active")
    assert created["trigger"] == {"entity": "deal", "action": "updated"}
    assert created["definition"]["steps"][1] == {"delay": {"for": "2 days"}, "summary": None}
    read = api.get(f"/automations/{created['id']}", headers=t.admin).json()
    assert read == created

    changed = {**SIMPLE, "steps": [{"action": "activity.create", "params": {"subject": "v2"}}]}
    updated = api.put(f"/automations/{created['id']}", json=changed, headers=t.admin)
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2 and updated.json()["definition"]["steps"][0]["params"] == {"subject": "v2"}

    assert api.delete(f"/automations/{created['id']}", headers=t.admin).status_code == 204
    gone = api.get(f"/automations/{created['id']}", headers=t.admin)
    assert gone.status_code == 404 and gone.json() == {"detail": f"automation {created['id']} not found"}


def test_lists_show_active_first_and_flag_inactive_ones(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    with session_scope() as s:
        rep = s.get(User, t.rep_id)
        assert rep is not None
        rep.permission_set = {"manage_automations": True}
        s.add(rep)
    create(api, t.admin, name="B admin's", active=False)
    create(api, t.admin, name="C admin's")
    create(api, t.rep, name="A rep's")
    every = api.get("/automations", headers=t.rep).json()
    assert [(a["name"], a["status"]) for a in every] == [
        ("A rep's", "active"), ("C admin's", "active"), ("B admin's", "inactive")]
    mine = api.get("/automations", params={"scope": "mine"}, headers=t.rep).json()
    assert [a["name"] for a in mine] == ["A rep's"]
    assert api.get("/automations", params={"scope": "theirs"}, headers=t.rep).status_code == 422


def test_activate_and_deactivate(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = create(api, t.admin)
    off = api.post(f"/automations/{automation['id']}/deactivate", headers=t.admin).json()
    assert (off["active"], off["status"]) == (False, "inactive")
    # An edit that does not mention `active` keeps the automation switched off.
    edited = api.put(f"/automations/{automation['id']}", json=SIMPLE, headers=t.admin).json()
    assert (edited["active"], edited["definition"]["active"], edited["version"]) == (False, False, 2)
    on = api.post(f"/automations/{automation['id']}/activate", headers=t.admin).json()
    assert (on["active"], on["status"]) == (True, "active")


def test_only_admins_or_permitted_users_write(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    automation = create(api, t.admin)
    assert api.get("/me", headers=t.rep).json()["can_manage_automations"] is False
    denials = [
        api.post("/automations", json=SIMPLE, headers=t.rep),
        api.put(f"/automations/{automation['id']}", json=SIMPLE, headers=t.rep),
        api.delete(f"/automations/{automation['id']}", headers=t.rep),
        api.post(f"/automations/{automation['id']}/deactivate", headers=t.rep),
        api.post(f"/automations/{automation['id']}/activate", headers=t.rep),
    ]
    for response in denials:
        assert response.status_code == 403, response.text
        assert "neither a global admin nor allowed to manage automations" in response.json()["detail"]
    assert api.get(f"/automations/{automation['id']}", headers=t.rep).status_code == 200  # reading is fine
    with session_scope() as s:
        stored = s.get(Automation, automation["id"])
        assert stored is not None and stored.active and stored.version == 1


def test_the_essential_plan_has_no_automations(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant(plan="essential")
    response = api.post("/automations", json=SIMPLE, headers=t.admin)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("automations are not available on the essential plan")
    assert api.get("/automations", headers=t.admin).json() == []


def test_activation_past_the_plans_cap_is_refused_naming_the_cap(api: TestClient,
                                                                   tenant: Callable[..., Tenant]) -> None:
    t = tenant(plan="advanced")
    settings = get_settings()
    settings.plan_limits["advanced"], cap = 2, settings.plan_limits["advanced"]
    try:
        first = create(api, t.admin, name="one")
        create(api, t.admin, name="two")
        over = api.post("/automations", json={**SIMPLE, "name": "three"}, headers=t.admin)
        assert over.status_code == 409
        assert over.json()["detail"] == ("the advanced plan allows 2 active automations and the company has 2: "
                                         "deactivate one first")
        third = create(api, t.admin, name="three", active=False)
        refused = api.post(f"/automations/{third['id']}/activate", headers=t.admin)
        assert refused.status_code == 409 and "allows 2 active automations" in refused.json()["detail"]
        api.post(f"/automations/{first['id']}/deactivate", headers=t.admin)
        assert api.post(f"/automations/{third['id']}/activate", headers=t.admin).json()["active"] is True
    finally:
        settings.plan_limits["advanced"] = cap


def test_invalid_definitions_are_refused_with_paths_and_nothing_is_saved(api: TestClient,
                                                                          tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({**SIMPLE, "name": "x" * 121}, {"path": "name", "message": "String should have at most 120 characters"}),
        ({**SIMPLE, "description": "x" * 201},
         {"path": "description", "message": "String should have at most 200 characters"}),
        ({**SIMPLE, "conditions": {"all": [{"field": "colour", "op": "eq", "value": 1}]}},
         {"path": "conditions.all[0].field", "message": "`colour` is not a field of deal"}),
        ({**SIMPLE, "steps": [{"action": "activity.create", "params": {"subject": "x", "due": {"in": "later"}}}]},
         {"path": "steps[0].params.due.in", "message": "'later' is not a relative date like '1 day'"}),
        ({**SIMPLE, "steps": [{"action": "deal.explode", "params": {}}]},
         {"path": "steps[0].action", "message": "unknown action type 'deal.explode'"}),
        ({**SIMPLE, "trigger": {"entity": "invoice", "action": "updated"}},
         {"path": "trigger.entity", "message": "Input should be 'deal', 'person', 'organization', 'activity', "
                                               "'lead' or 'project'"}),
    ]
    for definition, expected in cases:
        response = api.post("/automations", json=definition, headers=t.admin)
        assert response.status_code == 422, response.text
        [error] = [e for e in response.json()["detail"] if e["path"] == expected["path"]]
        assert error["message"].startswith(expected["message"]), error
        report = api.post("/automations/validate", json=definition, headers=t.admin).json()
        assert report["valid"] is False
        assert any(e["path"] == expected["path"] and e["message"].startswith(expected["message"])
                   for e in report["errors"]), report
    assert api.get("/automations", headers=t.admin).json() == []
    assert api.post("/automations/validate", json=SIMPLE, headers=t.rep).json() == {"valid": True, "errors": []}
    not_json = api.post("/automations", content=b"{", headers={**t.admin, "Content-Type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["message"].startswith("JSON decode error")


def test_action_types_are_listed_with_their_parameter_schemas(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    types = {a["name"]: a for a in api.get("/action-types", headers=t.rep).json()}
    assert {"deal.create", "deal.update", "person.delete", "activity.create"} <= set(types)
    deal_create = types["deal.create"]
    assert deal_create["description"] == "Create a deal." and deal_create["external"] is False
    assert "title" in deal_create["params_schema"]["required"]
    assert "due" in types["activity.create"]["params_schema"]["properties"]


def test_another_companys_automations_answer_404(api: TestClient, tenant: Callable[..., Tenant]) -> None:
    a, b = tenant(), tenant()
    automation = create(api, a.admin)
    path = f"/automations/{automation['id']}"
    responses = [api.get(path, headers=b.admin), api.put(path, json=SIMPLE, headers=b.admin),
                 api.delete(path, headers=b.admin), api.post(f"{path}/activate", headers=b.admin),
                 api.post(f"{path}/deactivate", headers=b.admin),
                 api.post(f"{path}/test-run", json={"event": {"current": {"title": "x"}}}, headers=b.admin)]
    assert [r.status_code for r in responses] == [404] * 6
    assert api.get("/automations", headers=b.admin).json() == []
    assert api.get(path, headers=a.admin).json() == automation  # untouched
    assert api.get("/automations/99999999999", headers=a.admin).status_code == 422

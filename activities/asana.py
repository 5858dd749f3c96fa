"""`asana.create_task`: a task in an Asana project (REST API, personal access token), its due date relative
to the trigger as in `activity.create`."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from activities.context import ActionContext
from activities.dates import DueSpec, resolve_due
from activities.providers import calling, connection_check, connection_for, http_client, raise_for_answer
from activities.registry import action
from models.connections import OpenConnection


class AsanaTaskParams(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # "{{deal.value}}" renders to a number
    #: The project's gid (the number in its URL).
    project: str = Field(min_length=1, pattern=r"^\d+$")
    name: str = Field(min_length=1)
    notes: str | None = None
    #: {in: "1 day"}, {next: friday} or a date; none: no due date.
    due: DueSpec | None = None
    #: A user gid or email address in the workspace.
    assignee: str | None = None
    connection: str | None = None


def _client(connection: OpenConnection) -> httpx.Client:
    return http_client(base_url=str(connection.settings.base_url).rstrip("/") + "/",
                       headers={"Authorization": f"Bearer {connection.secrets.token.get_secret_value()}",
                                "Accept": "application/json"})


@action("asana.create_task", AsanaTaskParams, external=True, max_per_second=2.5,
        description="Create a task in an Asana project with the company's Asana connection.")
def create_task(ctx: ActionContext, params: AsanaTaskParams) -> dict[str, Any]:
    connection = connection_for(ctx, ("asana",), params.connection)
    data: dict[str, Any] = {"name": params.name, "projects": [params.project]}
    if params.notes:
        data["notes"] = params.notes
    if params.due is not None:
        data["due_on"] = resolve_due(params.due, ctx.event.occurred_at, ctx.company.timezone).isoformat()
    if params.assignee:
        data["assignee"] = params.assignee
    with calling("Asana"), _client(connection) as client:
        response = client.post("tasks", json={"data": data})
    raise_for_answer("Asana", response)
    task = response.json()["data"]
    return {"task_id": task["gid"], "message_id": task["gid"], "url": task.get("permalink_url"),
            "due_on": data.get("due_on")}


@connection_check("asana")
def check(connection: OpenConnection) -> str:
    with calling("Asana"), _client(connection) as client:
        response = client.get("users/me")
    raise_for_answer("Asana", response)
    return f"user {response.json()['data'].get('name')}"

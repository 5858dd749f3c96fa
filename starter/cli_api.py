"""CLI commands over the HTTP API (automations, test runs, action types, events), to a server (`--api --token`)
or in process on the database as a user (`--user`): one code path; plus `api` (serve it) and `token`."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from models.settings import get_settings

app = typer.Typer()
console = Console()

ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL (or API_URL). Default: in process, on the "
                                                          "database")]
Token = Annotated[str | None, typer.Option("--token", help="API token (or API_TOKEN)")]
ActingUser = Annotated[int | None, typer.Option("--user", help="In process: act as this user id")]
#: Events per request when emitting a file.
EMIT_BATCH = 100


class ApiError(Exception):
    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        super().__init__(f"{status}: {detail}")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


@asynccontextmanager
async def api_client(api: str | None, token: str | None, user: int | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API: over HTTP, or in process (no server; the database of DATABASE_URL)."""
    settings = get_settings()
    api, token = api or settings.api_url, token or settings.api_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if api:
        if not token:
            raise _fail("--token (or API_TOKEN) is needed to use the API at " + api)
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
            yield client
        return
    if user is None and not token:
        raise _fail("give --user ID (act as that user, in process) or --api URL with --token")
    from starter.api.deps import acting_as, current_user
    from starter.api.main import create_app
    from starter.cli import _database_url

    _database_url()
    local = create_app()
    if user is not None:
        local.dependency_overrides[current_user] = acting_as(user)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=local), base_url="http://in-process",
                                 headers=headers) as client:
        yield client


async def call(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ApiError(response.status_code, detail)
    return response.json() if response.content else None


def _problems(err: ApiError, prefix: str = "") -> None:
    if isinstance(err.detail, list):
        for problem in err.detail:
            console.print(f"[red]{escape(prefix + str(problem.get('path', '')))}[/red]: "
                          f"{escape(str(problem.get('message', problem)))}")
    else:
        console.print(f"[red]{escape(prefix)}error ({err.status}):[/red] {escape(str(err.detail))}")


def _run(work: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(work)
    except ApiError as err:
        _problems(err)
        raise typer.Exit(1) from None
    except httpx.TransportError as err:
        raise _fail(f"cannot reach the API: {err!r}") from None


def _load(path: Path) -> list[Any]:
    try:
        text = path.read_text()
        raw = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise _fail(f"cannot read {path}: {err}") from None
    return raw if isinstance(raw, list) else [raw]


def _status(active: bool) -> str:
    return "[green]active[/green]" if active else "[yellow]inactive[/yellow]"


@app.command("list")
def list_automations(mine: Annotated[bool, typer.Option(help="Only the automations you own")] = False,
                     api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """The company's automations, active first."""

    async def main() -> None:
        async with api_client(api, token, user) as client:
            rows = await call(client, "GET", "/automations", params={"scope": "mine" if mine else "all"})
        table = Table(title=f"Automations ({len(rows)})", title_justify="left")
        for column in ("id", "name", "trigger", "status", "version", "owner"):
            table.add_column(column)
        for a in rows:
            table.add_row(str(a["id"]), escape(a["name"]), f"{a['trigger']['entity']} {a['trigger']['action']}",
                          _status(a["active"]), str(a["version"]), str(a["owner_id"]))
        console.print(table)

    _run(main())


@app.command()
def show(automation_id: int, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """One automation and its current definition (YAML)."""

    async def main() -> None:
        async with api_client(api, token, user) as client:
            a = await call(client, "GET", f"/automations/{automation_id}")
        console.print(f"[bold]{escape(a['name'])}[/bold] (#{a['id']} v{a['version']}, owner {a['owner_id']}) "
                      f"{_status(a['active'])}")
        console.print(yaml.safe_dump(a["definition"], sort_keys=False, allow_unicode=True), markup=False)

    _run(main())


@app.command()
def validate(file: Path, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Check automations from a YAML/JSON file (one or a list) without saving them; problems with their paths."""
    items = _load(file)

    async def main() -> None:
        async with api_client(api, token, user) as client:
            invalid = await _invalid_items(client, items)
        if invalid:
            raise typer.Exit(1)
        console.print(f"[green]{len(items)} valid[/green]")

    _run(main())


async def _invalid_items(client: httpx.AsyncClient, items: list[Any]) -> int:
    invalid = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            console.print(f"[red]item {index}[/red]: an automation is an object")
            invalid += 1
            continue
        report = await call(client, "POST", "/automations/validate", json=item)
        for problem in report["errors"]:
            console.print(f"[red]item {index}[/red] {escape(problem['path'])}: {escape(problem['message'])}")
        invalid += not report["valid"]
    return invalid


@app.command()
def apply(file: Path, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Create or update automations from a YAML/JSON file (one or a list): same name, new version. Every item is
    validated first, so an invalid file changes nothing."""
    items = _load(file)

    async def main() -> None:
        async with api_client(api, token, user) as client:
            if await _invalid_items(client, items):
                raise typer.Exit(1)
            existing = {a["name"]: a["id"] for a in await call(client, "GET", "/automations")}
            with Progress(console=console) as progress:
                task = progress.add_task("Applying automations", total=len(items))
                for index, item in enumerate(items):
                    automation_id = existing.get(item.get("name"))
                    try:
                        if automation_id is None:
                            saved = await call(client, "POST", "/automations", json=item)
                        else:
                            saved = await call(client, "PUT", f"/automations/{automation_id}", json=item)
                    except ApiError as err:
                        _problems(err, f"item {index} ")
                        console.print(f"{index} of {len(items)} applied")
                        raise typer.Exit(1) from None
                    verb = "updated" if automation_id else "created"
                    progress.console.print(f"{verb} automation {saved['id']} {escape(repr(saved['name']))} "
                                           f"(version {saved['version']})")
                    progress.advance(task)

    _run(main())


def _switch(automation_id: int, action: str, api: str | None, token: str | None, user: int | None) -> None:
    async def main() -> None:
        async with api_client(api, token, user) as client:
            a = await call(client, "POST", f"/automations/{automation_id}/{action}")
        console.print(f"automation {a['id']} {escape(repr(a['name']))} is {_status(a['active'])}")

    _run(main())


@app.command()
def activate(automation_id: int, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Switch an automation on (within the plan's cap of active automations)."""
    _switch(automation_id, "activate", api, token, user)


@app.command()
def deactivate(automation_id: int, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Switch an automation off."""
    _switch(automation_id, "deactivate", api, token, user)


@app.command()
def delete(automation_id: int, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Delete an automation (its run history stays)."""

    async def main() -> None:
        async with api_client(api, token, user) as client:
            await call(client, "DELETE", f"/automations/{automation_id}")
        console.print(f"deleted automation {automation_id}")

    _run(main())


@app.command("test-run")
def test_run(automation_id: int,
             event: Annotated[Path | None, typer.Option(help="A sample event (JSON/YAML, S2 fields)")] = None,
             record: Annotated[int | None, typer.Option(help="An existing record of the trigger's type")] = None,
             previous: Annotated[str | None, typer.Option(help="With --record: old values, as JSON")] = None,
             api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """What the automation would do for an event: conditions and rendered params, nothing executed."""
    body: dict[str, Any] = {}
    if event is not None:
        body["event"] = _load(event)[0]
    if record is not None:
        body["record_id"] = record
    if previous is not None:
        try:
            body["previous"] = json.loads(previous)
        except ValueError as err:
            raise _fail(f"--previous is not JSON: {err}") from None

    async def main() -> None:
        async with api_client(api, token, user) as client:
            result = await call(client, "POST", f"/automations/{automation_id}/test-run", json=body)
        _print_preview(result)

    _run(main())


def _print_preview(result: dict[str, Any]) -> None:
    from starter.cli import STATUS_STYLE

    style = STATUS_STYLE.get(result["status"], "")
    event = result["event"]
    console.print(f"{event['entity']} {event['entity_id']} {event['action']}: "
                  f"[{style}]{result['status']}[/{style}] {escape(result['reason'] or '')}")
    conditions = Table(title="Trigger conditions", title_justify="left")
    for column in ("condition", "field", "op", "value", "actual", "held"):
        conditions.add_column(column)
    for check in (result["conditions"] or {}).get("checks", []):
        conditions.add_row(check["path"], check["field"], check["op"], escape(json.dumps(check["value"])),
                           escape(json.dumps(check["actual"])),
                           "[green]yes[/green]" if check["held"] else "[red]no[/red]")
    if conditions.row_count:
        console.print(conditions)
    steps = Table(title="Steps (nothing executed)", title_justify="left")
    for column in ("#", "step", "would", "params / error"):
        steps.add_column(column, overflow="fold")
    for s in result["steps"]:
        if s["error_type"]:
            detail = f"{s['error_type']}: {s['error_message']}"
        elif s["status"] == "skipped":
            detail = f"when false: {', '.join(s['conditions']['failed'])}"
        else:
            detail = s["delay"] or json.dumps(s["params"])
        steps.add_row(str(s["index"] + 1), s["action"] or "delay", s["status"], escape(detail))
    if steps.row_count:
        console.print(steps)


@app.command("action-types")
def action_types(api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Every action a step may use, with its parameters."""

    async def main() -> None:
        async with api_client(api, token, user) as client:
            rows = await call(client, "GET", "/action-types")
        table = Table(title=f"Action types ({len(rows)})", title_justify="left")
        for column in ("action", "description", "params"):
            table.add_column(column, overflow="fold")
        for a in rows:
            schema = a["params_schema"]
            required = set(schema.get("required", []))
            params = ", ".join(f"{p}{'*' if p in required else ''}" for p in schema.get("properties", {}))
            table.add_row(a["name"], escape(a["description"]), params)
        console.print(table)
        console.print("* required")

    _run(main())


def _in_file(path: str, offset: int) -> str:
    """`events[3].entity` of a batch starting at event `offset` of the file -> the event's position in the file."""
    match = re.match(r"^events\[(\d+)\]", path)
    return f"events[{offset + int(match[1])}]{path[match.end():]}" if match else path


@app.command()
def emit(file: Path, api: ApiUrl = None, token: Token = None, user: ActingUser = None) -> None:
    """Send entity events (S2) from a JSON/YAML file, one or a list, in batches, to durable intake."""
    events = _load(file)
    batches = [events[i:i + EMIT_BATCH] for i in range(0, len(events), EMIT_BATCH)]

    async def main() -> None:
        accepted = duplicates = 0
        async with api_client(api, token, user) as client:
            with Progress(console=console) as progress:
                task = progress.add_task("Sending events", total=len(events))
                for number, batch in enumerate(batches):
                    try:
                        answer = await call(client, "POST", "/events", json=batch)
                    except ApiError as err:
                        if isinstance(err.detail, list):
                            for problem in err.detail:
                                problem["path"] = _in_file(problem["path"], number * EMIT_BATCH)
                        _problems(err)
                        console.print(f"{accepted + duplicates} events accepted before this batch; it and the "
                                      "rest were not sent")
                        raise typer.Exit(1) from None
                    duplicates += sum(a["duplicate"] for a in answer["accepted"])
                    accepted += sum(not a["duplicate"] for a in answer["accepted"])
                    progress.advance(task, len(batch))
        console.print(f"{accepted} events accepted, {duplicates} already received. Workers start their runs: "
                      "`automations runs` shows them.")

    _run(main())


@app.command()
def token(user: Annotated[int, typer.Option("--user", help="The user the token acts as")],
          name: Annotated[str, typer.Option(help="What the token is for")] = "cli") -> None:
    """Issue an API token for a user (printed once; only its hash is stored)."""
    from models.db import session_scope
    from starter.cli import _database_url
    from starter.tokens import issue_token

    _database_url()
    try:
        with session_scope() as session:
            issued = issue_token(session, user, name)
    except LookupError as err:
        raise _fail(str(err)) from None
    typer.echo(issued)  # plain, so that `TOKEN=$(automations token --user 1)` works


def demo_token(admin_id: int) -> str:
    """A fresh token for the demo admin; the one the previous `make run` printed is revoked."""
    from models.db import session_scope
    from starter.tokens import issue_token, revoke_tokens

    with session_scope() as session:
        revoke_tokens(session, admin_id, "make run")
        return issue_token(session, admin_id, "make run")


def api_server() -> uvicorn.Server:
    """The API's server on API_HOST:API_PORT; refused at once when the port is taken."""
    from starter.devstack import port_open

    settings = get_settings()
    if port_open(settings.api_host, settings.api_port):
        raise RuntimeError(f"port {settings.api_port} is taken: set API_PORT to serve the API elsewhere")
    return uvicorn.Server(uvicorn.Config("starter.api.main:app", host=settings.api_host, port=settings.api_port,
                                         log_level="warning"))


async def serve_until(server: uvicorn.Server, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopped.cancel()
    await serving


@app.command("api")
def serve(host: Annotated[str | None, typer.Option(help="Default: API_HOST (127.0.0.1)")] = None,
          port: Annotated[int | None, typer.Option(help="Default: API_PORT (8000)")] = None) -> None:
    """Serve the HTTP API (docs at /docs) until SIGINT/SIGTERM."""
    from models.migrate import upgrade
    from starter.cli import _database_url

    settings = get_settings()
    upgrade(_database_url())
    uvicorn.run("starter.api.main:app", host=host or settings.api_host, port=port or settings.api_port,
                log_level="info")

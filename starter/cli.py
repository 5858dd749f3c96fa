"""The `automations` CLI: the dev stack, the worker, and admin commands on definitions, events and runs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
from contextlib import AsyncExitStack
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from models.settings import get_settings
from starter.cli_api import app as api_commands

app = typer.Typer(help="CRM workflow automations on Temporal.", no_args_is_help=True)
app.add_typer(api_commands)  # automations, action types, events, tokens and the API server: starter/cli_api.py
console = Console()

STATUS_STYLE = {"succeeded": "green", "failed": "red", "skipped": "yellow", "stopped": "magenta",
                "running": "cyan", "waiting": "blue", "pending": "dim"}


def _database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL under the data folder (started if it is not running), whose
    connection secrets are encrypted with a key kept in that folder unless CONNECTIONS_KEY is set."""
    settings = get_settings()
    if not settings.database_url:
        from starter.devstack import embedded_postgres_url

        os.environ["DATABASE_URL"] = embedded_postgres_url(settings.data_dir)
        get_settings.cache_clear()
        from starter.connections_cli import ensure_connections_key

        ensure_connections_key()
    return get_settings().database_url


def _temporal_address() -> str:
    if not get_settings().temporal_address:
        os.environ["TEMPORAL_ADDRESS"] = "127.0.0.1:7233"
        get_settings.cache_clear()
    return get_settings().temporal_address


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from models.migrate import upgrade

    upgrade(_database_url())
    console.print("[green]database is up to date[/green]")


async def _serve(stop: asyncio.Event) -> None:
    from temporalio.service import RPCError

    from starter.client import connect
    from starter.devstack import ensure_search_attributes
    from starter.relay import run_relay
    from starter.schedules import ensure_retention_schedule
    from worker import build_workers

    client = await connect()
    try:
        await ensure_search_attributes(client)
    except RPCError as err:  # e.g. Temporal Cloud: register them once with tcld / the UI instead
        logging.getLogger(__name__).warning("could not register search attributes: %s", err)
    await ensure_retention_schedule(client)
    relay = asyncio.create_task(run_relay(client, stop))
    async with AsyncExitStack() as workers:
        for worker in build_workers(client):
            await workers.enter_async_context(worker)
        await stop.wait()
    await relay


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@app.command()
def worker() -> None:
    """Run a worker (run workflows and actions) and the outbox relay until SIGINT/SIGTERM, which drains it:
    no new tasks are taken, and steps in flight get up to 30 s to finish."""
    from models.migrate import upgrade
    from starter.logs import configure_logging

    configure_logging()

    upgrade(_database_url())
    _temporal_address()

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await _serve(stop)

    asyncio.run(main())


@app.command()
def dev(events: Annotated[bool, typer.Option(help="Fire the demo events")] = True) -> None:
    """Everything on one machine: PostgreSQL, Temporal dev server + UI, worker, relay, demo. Ctrl-C stops it."""
    from models.db import session_scope
    from models.migrate import upgrade
    from starter.codec_server import serve as serve_codec
    from starter.devstack import port_open, start_temporal_dev_server
    from starter.logs import configure_logging

    configure_logging("WARNING")
    settings = get_settings()
    codec_host, _, codec_port = settings.codec_server_address.rpartition(":")
    if port_open(codec_host, int(codec_port)):
        raise _fail(f"{settings.codec_server_address} is taken: is another codec server running? Set "
                    "CODEC_SERVER_ADDRESS and CODEC_SERVER_URL to another port")
    console.print("[bold]Starting the automations dev stack[/bold]")
    url = _database_url()
    where = "DATABASE_URL" if settings.database_url else f"embedded, data in {settings.data_dir / 'postgres'}"
    console.print(f"  PostgreSQL   {where}")
    upgrade(url)
    temporal: subprocess.Popen[bytes] | None = None
    if not settings.temporal_address:
        temporal = start_temporal_dev_server(settings.data_dir, codec_endpoint=settings.codec_server_url)
        console.print(f"  Temporal     dev server on 127.0.0.1:7233, UI {settings.temporal_ui_url}")
    console.print(f"  Codec server {settings.codec_server_url} (the UI decrypts payloads through it)")
    _temporal_address()

    from starter.connections_cli import ensure_connections_key
    from starter.fakes import FakeProviders

    ensure_connections_key()
    fakes = FakeProviders()
    fakes.start()

    async def main() -> None:
        from starter.cli_api import api_server, demo_token, serve_until
        from starter.demo import connect_fakes, demo_events, fake_report, load_demo

        server = api_server()
        with session_scope() as session:
            company, admin = load_demo(session)
            connect_fakes(session, company, fakes)
        console.print(f"  Demo company {company.name} (id {company.id}), admin user {admin.id}")
        console.print(f"  Fakes        Slack and Trello stand-ins on {fakes.base} (the demo's connections)")
        stop = asyncio.Event()
        _stop_on_signals(stop)
        serving = asyncio.create_task(_serve(stop))
        codec = asyncio.create_task(serve_codec(stop))
        api = asyncio.create_task(serve_until(server, stop))
        assert admin.id is not None
        token = demo_token(admin.id)
        console.print(f"  API          http://{settings.api_host}:{settings.api_port}  (docs: /docs)\n"
                      f"  API token    {token}  (admin {admin.name}; `export API_TOKEN=…`)", soft_wrap=True)
        if events:
            with session_scope() as session:
                done = demo_events(session, company, admin)
            for line in done:
                console.print(f"  • {line}")
        console.print(
            f"\n[bold]Watch the runs[/bold]\n  Temporal UI  {settings.temporal_ui_url}/namespaces/"
            f"{settings.temporal_namespace}/workflows?query=CrmCompanyId%3D{company.id}\n"
            f"  History      .venv/bin/automations runs --company {company.id}   "
            "(and `automations run <run id>` for its steps)\n  Ctrl-C stops everything.\n")
        if events:
            await asyncio.sleep(15)
            _print_runs(company_id=company.id, limit=20)
            for line in fake_report(fakes):
                console.print(f"  [dim]fake[/dim] {line}")
        await serving
        await codec
        await api

    try:
        asyncio.run(main())
    finally:
        fakes.stop()
        if temporal is not None:
            temporal.terminate()
            temporal.wait(timeout=10)
        console.print("stopped")


@app.command("codec-server")
def codec_server() -> None:
    """Serve /encode and /decode for the Temporal UI and CLI (CODEC_SERVER_ADDRESS) until SIGINT/SIGTERM."""
    from starter.codec_server import serve as serve_codec
    from starter.logs import configure_logging

    configure_logging()

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await serve_codec(stop)

    asyncio.run(main())


@app.command()
def doctor() -> None:
    """Check PostgreSQL, Temporal, the encryption keys and the codec server as configured; exit 1 if one fails."""
    from starter.doctor import run_checks

    marks = {"ok": "[green]ok[/green]", "warning": "[yellow]warning[/yellow]", "failed": "[red]FAILED[/red]"}
    checks = asyncio.run(run_checks(get_settings()))
    table = Table(title="automations doctor", title_justify="left")
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(check.name, marks[check.status], check.detail)
    console.print(table)
    if any(check.status == "failed" for check in checks):
        raise typer.Exit(1)


def _print_runs(**filters: Any) -> None:
    from models.db import session_scope
    from models.history import list_runs

    with session_scope() as session:
        runs = list_runs(session, **filters)
    if console.width < 120:  # a table this wide is unreadable in a narrow terminal: one entry per run
        console.print(f"[bold]Automation runs ({len(runs)})[/bold] — `automations run <run>` shows one")
        for r in runs:
            style = STATUS_STYLE.get(r.status, "")
            console.print(f"[{style}]{r.status:<9}[/{style}] {r.automation_name} · {r.entity} {r.entity_id} "
                          f"{r.trigger_action}  [dim]{short_run_id(r.id)}[/dim]")
            if r.reason:
                console.print(f"          [dim]{r.reason}[/dim]")
        return
    table = Table(title=f"Automation runs ({len(runs)}) — `automations run <run>` shows one", title_justify="left")
    table.add_column("started", no_wrap=True)
    table.add_column("run", no_wrap=True)
    table.add_column("automation")
    table.add_column("record", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)
    for r in runs:
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(r.started_at.strftime("%m-%d %H:%M:%S"), short_run_id(r.id),
                      f"{r.automation_name} (#{r.automation_id} v{r.automation_version})",
                      f"{r.entity} {r.entity_id} {r.trigger_action}", f"[{style}]{r.status}[/{style}]",
                      r.reason or "")
    console.print(table)


def short_run_id(run_id: str) -> str:
    """automation-3-event-9d47491c-70a1-… -> automation-3-event-9d47491c (enough to find it again)."""
    head, _, event_id = run_id.partition("-event-")
    return f"{head}-event-{event_id[:8]}" if event_id else run_id


@app.command()
def runs(
    company: Annotated[int | None, typer.Option(help="Company id")] = None,
    automation: Annotated[int | None, typer.Option(help="Automation id")] = None,
    entity: Annotated[str | None, typer.Option(help="Record type, e.g. deal")] = None,
    record: Annotated[int | None, typer.Option(help="Record id")] = None,
    status: Annotated[str | None, typer.Option(help="running|waiting|succeeded|failed|skipped|stopped")] = None,
    limit: int = 50,
) -> None:
    """The run history, newest first."""
    _database_url()
    _print_runs(company_id=company, automation_id=automation, entity=entity, record_id=record, status=status,
                limit=limit)


@app.command()
def run(run_id: Annotated[str, typer.Argument(help="A run id, or its start as `runs` shows it")]) -> None:
    """One run with its steps: params, outputs, errors."""
    from models.api import temporal_ui_url
    from models.db import session_scope
    from models.history import find_run, run_steps

    _database_url()
    with session_scope() as session:
        try:
            found = find_run(session, run_id)
        except LookupError as err:
            raise _fail(str(err)) from None
        run_id = found.id
        steps = run_steps(session, run_id)
    style = STATUS_STYLE.get(found.status, "")
    console.print(f"[bold]{found.automation_name}[/bold] v{found.automation_version} on {found.entity} "
                  f"{found.entity_id} {found.trigger_action}: [{style}]{found.status}[/{style}] {found.reason or ''}")
    console.print(f"Temporal UI: {temporal_ui_url(run_id)}")
    table = Table()
    for column in ("#", "step", "status", "params", "output / error"):
        table.add_column(column, overflow="fold")
    for s in steps:
        style = STATUS_STYLE.get(s.status, "")
        detail = f"{s.error_type}: {s.error_message}" if s.error_type else json.dumps(s.output or {})[:200]
        table.add_row(str(s.step_index + 1), s.action or s.kind, f"[{style}]{s.status}[/{style}]",
                      json.dumps(s.params)[:200] if s.params else "", detail)
    console.print(table)


@app.command()
def purge(days: Annotated[int | None, typer.Option(help="Retention in days")] = None) -> None:
    """Delete finished runs older than the retention period (RUN_RETENTION_DAYS)."""
    from models.db import session_scope
    from models.history import purge as purge_runs

    _database_url()
    with session_scope() as session:
        count = purge_runs(session, days if days is not None else get_settings().run_retention_days)
    console.print(f"purged {count} runs")


from starter.connections_cli import connections_app  # noqa: E402  (its commands use the helpers above)

app.add_typer(connections_app, name="connections")

if __name__ == "__main__":
    app()

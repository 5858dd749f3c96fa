"""`automations connections …`: add, list and test a company's integration connections. Secrets are prompted
for (hidden, or read from standard input), never taken from the command line where shell history keeps them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from models.settings import get_settings

connections_app = typer.Typer(help="Integration connections of a company (secrets encrypted at rest).",
                              no_args_is_help=True)


def ensure_connections_key() -> None:
    """For the embedded stack without CONNECTIONS_KEY: a key kept beside its data, in the data folder."""
    settings = get_settings()
    if settings.connections_key.get_secret_value():
        return
    from models.connections import generate_key

    path: Path = settings.data_dir / "connections.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key())
    os.environ["CONNECTIONS_KEY"] = path.read_text().strip()
    get_settings.cache_clear()


def _pairs(items: list[str], option: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint=option)
        try:
            values[key] = json.loads(value)  # numbers and booleans (port=587, …)
        except json.JSONDecodeError:
            values[key] = value
    return values


@connections_app.command("add")
def add(
    provider: Annotated[str, typer.Argument(help="slack | teams_webhook | teams_bot | trello | asana | smtp | "
                                                 "graph | webhook")],
    name: Annotated[str, typer.Argument(help="The name steps use (`connection:`); same name = replace")],
    company: Annotated[int, typer.Option(help="Company id")],
    setting: Annotated[list[str] | None, typer.Option("--set", help="A non-secret setting, key=value")] = None,
    mailbox_of: Annotated[int | None, typer.Option(help="smtp/graph: the user whose synced mailbox this is")] = None,
    address: Annotated[str | None, typer.Option(help="With --mailbox-of: the mailbox's address")] = None,
) -> None:
    """Add (or replace) a connection. Each secret of the provider is asked for, hidden."""
    from models.connections import PROVIDERS, ConnectionProblem, save_connection
    from models.db import session_scope
    from models.tables import Company, User
    from starter.cli import _database_url, _fail, console

    _database_url()
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise _fail(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
    if (mailbox_of is None) != (address is None) or (mailbox_of is not None and provider not in ("smtp", "graph")):
        raise _fail("--mailbox-of and --address go together, with an smtp or graph connection")
    secrets: dict[str, object] = {}
    for field, info in spec.secrets.model_fields.items():
        value = typer.prompt(f"{field} (hidden)", hide_input=True, default="" if not info.is_required() else None,
                             show_default=False)
        if value:
            secrets[field] = value
    with session_scope() as session:
        if session.get(Company, company) is None:
            raise _fail(f"company {company} does not exist")
        try:
            row = save_connection(session, company, provider, name, _pairs(setting or [], "--set"), secrets)
        except ConnectionProblem as err:
            raise _fail(str(err)) from None
        if mailbox_of is not None:
            user = session.get(User, mailbox_of)
            if user is None or user.company_id != company:
                raise _fail(f"user {mailbox_of} is not a user of company {company}")
            user.mailbox = {"connection_id": row.id, "address": address}
            session.add(user)
    mailbox = f", synced mailbox {address} of user {mailbox_of}" if mailbox_of else ""
    console.print(f"saved {provider} connection {name!r} (id {row.id}){mailbox}; "
                  f"check it with `automations connections test {name} --company {company}`")


@connections_app.command("list")
def list_connections(company: Annotated[int, typer.Option(help="Company id")]) -> None:
    """A company's connections with their settings (never their secrets)."""
    from sqlmodel import select

    from models.db import session_scope
    from models.tables import IntegrationConnection
    from starter.cli import _database_url, console

    _database_url()
    with session_scope() as session:
        rows = session.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == company)
                            .order_by(IntegrationConnection.name)).all()  # type: ignore[arg-type]
    table = Table(title=f"Connections of company {company}", title_justify="left")
    for column in ("id", "name", "provider", "settings", "updated"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row.id), row.name, row.provider, json.dumps(row.settings),
                      row.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@connections_app.command("test")
def test(name: Annotated[str, typer.Argument(help="The connection's name")],
         company: Annotated[int, typer.Option(help="Company id")]) -> None:
    """Call the provider with the connection's credentials (Slack auth.test, a token, an SMTP login, …)."""
    from sqlmodel import select

    from activities.errors import BusinessError, TransientError
    from activities.providers import check_connection
    from models.db import session_scope
    from models.tables import IntegrationConnection
    from starter.cli import _database_url, _fail, console

    _database_url()
    with session_scope() as session:
        row = session.exec(select(IntegrationConnection).where(IntegrationConnection.company_id == company,
                                                               IntegrationConnection.name == name)).first()
    if row is None:
        raise _fail(f"company {company} has no connection called {name!r} (see `automations connections list`)")
    try:
        found = check_connection(row)
    except (BusinessError, TransientError) as err:
        raise _fail(f"{row.provider} connection {name!r} does not work: {err}") from None
    console.print(f"[green]ok[/green] {row.provider} connection {name!r}: {found}")


@connections_app.command("keygen")
def keygen() -> None:
    """Print a new CONNECTIONS_KEY (to rotate: put it first, keep the old key after a comma)."""
    from models.connections import generate_key

    typer.echo(generate_key())

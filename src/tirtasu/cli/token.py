"""`tirtasu token`: API tokens (create, list, revoke) in the store."""

from __future__ import annotations

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from tirtasu.cli.common import StoreOption, console, fail, store_url

app = typer.Typer(
    help=(
        "API tokens of `tirtasu serve`: random secrets shown once at creation, stored only as "
        "their SHA-256, revocable. Roles: viewer (reads), operator (also handles alarms), admin "
        "(also manages sensors and tokens). See docs/service.md."
    ),
    no_args_is_help=True,
)


def _open(store):
    from tirtasu.store import open_store

    try:
        return open_store(store_url(store))
    except RuntimeError as exc:
        fail(f"{exc} (a DuckDB store served by `tirtasu serve` is locked by it: manage tokens through the API then)")


@app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="viewer, operator or admin."),
    name: str = typer.Option(..., "--name", help="Who or what uses the token (alice, scada-gateway)."),
    store: str = StoreOption,
):
    """Create a token and print its secret, once: it is stored only as a hash."""
    from tirtasu.service.auth import create_token

    with _open(store) as st:
        try:
            token_id, secret = create_token(st, name, role)
        except ValueError as exc:
            fail(str(exc))
    console.print(f"token {token_id} ({escape(role)}) for {escape(name)}; its secret, shown this once:", highlight=False)
    typer.echo(secret)  # plain, on a line of its own: easy to copy or capture


@app.command("list")
def list_(store: str = StoreOption):
    """List tokens (never their secrets), revoked ones included."""
    with _open(store) as st:
        tokens = st.tokens()
    table = Table(title=f"{len(tokens)} token(s)", title_justify="left")
    for col in ("id", "name", "role", "created", "revoked"):
        table.add_column(col)
    for r in tokens.itertuples():
        revoked = "" if pd.isna(r.revoked_at) else f"{r.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(r.token_id, escape(r.name), r.role, f"{r.created_at:%Y-%m-%d %H:%M}", revoked)
    console.print(table)


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="The token's id (from `tirtasu token list`)."), store: str = StoreOption):
    """Revoke a token: it is refused from then on (kept in the list, marked revoked)."""
    with _open(store) as st:
        if not st.revoke_token(token_id):
            known = st.tokens()
            if token_id in set(known["token_id"]):
                fail(f"token {token_id} is revoked already")
            fail(f"no token {token_id!r}; see tirtasu token list")
    console.print(f"token {escape(token_id)} revoked")

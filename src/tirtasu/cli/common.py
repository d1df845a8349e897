"""Shared pieces of the command line: the store option, console, error reporting."""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
err_console = Console(stderr=True)

DEFAULT_STORE = ".tirtasu/tirtasu.duckdb"

StoreOption = typer.Option(
    None,
    "--store",
    help=f"Where data is kept: a DuckDB file path or a postgresql:// URL. "
    f"Default: $TIRTASU_STORE, else {DEFAULT_STORE}.",
    show_default=False,
)


def store_url(value: str | None) -> str:
    return value or os.environ.get("TIRTASU_STORE") or DEFAULT_STORE


def fail(message: str, code: int = 1):
    """Print an error the user can act on and exit (no traceback)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def progress_bar(transient: bool = False) -> Progress:
    """The progress bar of long commands: stage, bar, percentage, elapsed and remaining time."""
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )

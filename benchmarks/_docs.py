"""Write a benchmark's figures into its own section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib.metadata import version
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`; rerun them with `make bench`.\n"


def machine_line(*packages: str) -> str:
    """Date, machine and package versions, for the record under a table."""
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {versions}."
    )


def write_section(name: str, markdown: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` (append if absent)."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text)


def publish(name: str, markdown: str, to_docs: bool = True) -> None:
    """Print a benchmark's table and, unless ``to_docs`` is False, write it into its section."""
    print(markdown)
    if to_docs:
        write_section(name, markdown)
        print("written to docs/benchmarks.md")

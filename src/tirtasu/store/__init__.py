"""Storage of sensors, readings, DMAs, models and billing behind one interface.

``open_store(url)`` picks the backend: a file path (or ``duckdb://path``) gives the embedded
DuckDB store; a ``postgresql://`` URL the PostgreSQL store (see docs/store.md).
"""

from __future__ import annotations

import os

from tirtasu.store.base import Store, WriteResult

__all__ = ["Store", "WriteResult", "open_store"]


def open_store(url: str | os.PathLike | None = None, read_only: bool = False) -> Store:
    """Open (creating if needed) the store at ``url``.

    Parameters
    ----------
    url : str or path, optional
        A DuckDB file path, ``duckdb:///path/file.duckdb``, ``":memory:"``, or a PostgreSQL
        URL ``postgresql://user:password@host:port/database`` (``postgres://`` too). Default:
        the ``TIRTASU_STORE`` environment variable, else ``.tirtasu/tirtasu.duckdb``.
    read_only : bool
        Open for reading only (a PostgreSQL store is then not migrated).

    Raises
    ------
    RuntimeError
        If the store cannot be opened: a locked or foreign file, an unreachable server, a
        schema of another version.
    """
    url = str(url or os.environ.get("TIRTASU_STORE") or ".tirtasu/tirtasu.duckdb")
    if url.startswith(("postgresql://", "postgres://")):
        from tirtasu.store.postgres import PostgresStore

        return PostgresStore(url, read_only=read_only)
    from tirtasu.store.duckdb import DuckDBStore

    if url.startswith("duckdb://"):
        url = url.removeprefix("duckdb://")
    return DuckDBStore(url, read_only=read_only)

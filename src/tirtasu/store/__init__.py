"""Storage of sensors, readings, DMAs, models and billing behind one interface.

``open_store(url)`` picks the backend: a file path (or ``duckdb://path``) gives the embedded
DuckDB store; ``postgresql://`` URLs are reserved for the PostgreSQL backend.
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
        A DuckDB file path, ``duckdb:///path/file.duckdb``, or ``":memory:"``. Default: the
        ``TIRTASU_STORE`` environment variable, else ``.tirtasu/tirtasu.duckdb``.
    """
    url = str(url or os.environ.get("TIRTASU_STORE") or ".tirtasu/tirtasu.duckdb")
    if url.startswith(("postgresql://", "postgres://")):
        raise NotImplementedError(
            "the PostgreSQL backend is not available in this version; use a DuckDB file path"
        )
    from tirtasu.store.duckdb import DuckDBStore

    if url.startswith("duckdb://"):
        url = url.removeprefix("duckdb://")
    return DuckDBStore(url, read_only=read_only)

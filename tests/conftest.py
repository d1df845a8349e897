"""Shared fixtures. Networks come from the epyt package (installed, no download)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import epyt
import pytest

NETWORKS = Path(epyt.__file__).parent / "networks"
POSTGRES_HINT = "PostgreSQL tests need TIRTASU_TEST_POSTGRES_URL, e.g. postgresql://postgres@127.0.0.1:5432/test"
MQTT_HINT = "MQTT tests need TIRTASU_TEST_MQTT_URL, e.g. mqtt://127.0.0.1:1883"


def server_url(config, variable: str, hint: str) -> str:
    """A test server's URL from the environment; skip without it, fail under CI (it must be there)."""
    url = os.environ.get(variable)
    if not url:
        if config.ci:
            pytest.fail(hint, pytrace=False)
        pytest.skip(hint)
    return url


def pytest_configure(config):
    # Server-backed tests skip without their server, except in CI where absence is a failure.
    config.ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")


SERVER_MARKS = ("postgres", "mqtt", "browser")


def pytest_collection_modifyitems(config, items):
    # `make test` spreads the suite over the machine's cores (pytest-xdist, --dist loadgroup);
    # the tests of shared servers, brokers they start themselves and the browser all run on one
    # worker, one after the other, so that none sees another's messages or ports
    for item in items:
        if any(item.get_closest_marker(m) for m in SERVER_MARKS):
            item.add_marker(pytest.mark.xdist_group("servers"))


@pytest.fixture(scope="session")
def ltown_path() -> Path:
    return NETWORKS / "L-TOWN.inp"


@pytest.fixture(scope="session")
def net1_path() -> Path:
    """EPANET's Net1, in GPM and psi: a model in US units."""
    return NETWORKS / "asce-tf-wdst" / "Net1.inp"


@pytest.fixture(scope="session")
def postgres_url(request) -> str:
    """The PostgreSQL test server's URL (see :func:`server_url`)."""
    return server_url(request.config, "TIRTASU_TEST_POSTGRES_URL", POSTGRES_HINT)


@pytest.fixture(scope="session")
def mqtt_url(request) -> str:
    """The MQTT test broker's URL (see :func:`server_url`)."""
    return server_url(request.config, "TIRTASU_TEST_MQTT_URL", MQTT_HINT)


@pytest.fixture
def pg_url(postgres_url):
    """A URL whose tables live in a fresh schema of their own, dropped after the test.

    Tests share one database; a schema each (first on ``search_path``) keeps them apart.
    """
    import psycopg

    schema = f"tirtasu_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"TIRTASU_TEST_POSTGRES_URL={postgres_url} cannot be reached: {exc}", pytrace=False)
    parts = urlsplit(postgres_url)
    query = dict(parse_qsl(parts.query))
    query["options"] = (query.get("options", "") + f" -c search_path={schema}").strip()
    yield urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """An empty store, once per backend."""
    from tirtasu.store import open_store

    if request.param == "duckdb":
        st = open_store(tmp_path / "test.duckdb")
    else:
        st = open_store(request.getfixturevalue("pg_url"))
    yield st
    st.close()

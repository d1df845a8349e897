"""Shared fixtures. Networks come from the epyt package (installed, no download)."""

from __future__ import annotations

import os
from pathlib import Path

import epyt
import pytest

NETWORKS = Path(epyt.__file__).parent / "networks"


def pytest_configure(config):
    # Server-backed tests skip without their server, except in CI where absence is a failure.
    config.ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def ltown_path() -> Path:
    return NETWORKS / "L-TOWN.inp"


@pytest.fixture(scope="session")
def net1_path() -> Path:
    """EPANET's Net1, in GPM and psi: a model in US units."""
    return NETWORKS / "asce-tf-wdst" / "Net1.inp"


@pytest.fixture
def store(tmp_path):
    from tirtasu.store import open_store

    st = open_store(tmp_path / "test.duckdb")
    yield st
    st.close()

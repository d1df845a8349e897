"""The column-wise validation of big SenML packs gives exactly what the record-by-record path gives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tirtasu.ingest import validate
from tirtasu.ingest.validate import SensorRegistry, Validated, validate_payload
from tirtasu.store import open_store

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def registry():
    with open_store(":memory:") as st:
        st.upsert_sensors(
            pd.DataFrame(
                {
                    "sensor_id": ["P1", "P2", "dev:7:p", "Q1", "T1"],
                    "kind": ["pressure", "pressure", "pressure", "flow", "quality"],
                    "unit": ["m", "bar", None, "l/s", "degC"],
                }
            )
        )
        yield SensorRegistry(st)


def _validate(payload, registry, fast: bool, monkeypatch, topic="P1") -> Validated:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(validate, "_loads", None)
        return validate_payload(payload, registry=registry, source="test", topic_sensor=topic, now=NOW,
                                received_at=pd.Timestamp(NOW, unit="s", tz="UTC").to_pydatetime())


def _same(a: Validated, b: Validated) -> None:
    for name in ("sensor_ids", "times_us", "values", "raws", "sources", "quarantine", "details"):
        assert getattr(a, name) == getattr(b, name), name
    assert [type(v) for v in a.values] == [type(v) for v in b.values]
    assert [type(t) for t in a.times_us] == [type(t) for t in b.times_us]


def _random_pack(rng) -> list[dict]:
    pieces = []
    good = [
        lambda: {"bn": str(rng.choice(["P1", "P2", "Q1", "T1"])), "bt": float(rng.integers(1.6e9, 1.69e9)), "t": 0, "v": float(rng.uniform(0, 60))},
        lambda: {"t": int(rng.integers(0, 10**6)), "v": round(float(rng.uniform(1, 5)), 3)},
        lambda: {"t": float(rng.uniform(-1e5, 0)), "v": int(rng.integers(1, 50))},
        lambda: {"bn": "dev:7:", "n": "p", "t": float(rng.uniform(1.6e9, 1.69e9)), "v": 4.5, "u": "bar"},
        lambda: {"n": "", "bu": "kPa", "t": -60.5, "v": 300},
        lambda: {"bu": None, "v": 2.5},
        lambda: {"u": "psi", "t": 1, "v": 30},
        lambda: {"bn": "", "t": 7, "v": 33.25},
        lambda: {"bt": 1.65e9, "v": 1e-3},
    ]
    bad = [
        lambda: {"t": 1, "v": True},
        lambda: {"t": "2023-11-14T22:00:00Z", "v": 3.0},
        lambda: {"bn": "NOPE", "v": 1},
        lambda: {"v": 1e6, "n": ""},
        lambda: {"t": 5e9, "v": 1.0},
        lambda: {"bv": 1, "v": 2},
        lambda: {"t": 1, "vs": "x"},
        lambda: {"bn": "bad name", "v": 1},
        lambda: {"u": "furlong", "v": 1},
        lambda: {"t": 1, "v": 1, "x_": 1},
        lambda: {"t": -1.7e9, "v": 1.0},
        lambda: {"t": 1, "v": None},
    ]
    for _ in range(int(rng.integers(1, 40))):
        pieces.append((bad if rng.random() < 0.03 else good)[int(rng.integers(0, 9 if len(pieces) == 0 else 9))]())
    if rng.random() < 0.3:
        pieces.insert(int(rng.integers(0, len(pieces) + 1)), bad[int(rng.integers(0, len(bad)))]())
    return pieces


def test_fast_path_matches_record_by_record(registry, monkeypatch):
    rng = np.random.default_rng(11)
    fast_taken = 0
    for _ in range(400):
        pack = _random_pack(rng)
        payload = json.dumps(pack).encode()
        slow = _validate(payload, registry, False, monkeypatch)
        fast = _validate(payload, registry, True, monkeypatch)
        _same(fast, slow)
        probe = Validated()
        fast_taken += validate._validate_pack_fast(payload, registry, "test", "P1", NOW, int((NOW + 3600) * 1e6), None, probe)
    assert fast_taken > 30  # the fast path did the work for many (the others mix units and kinds)


def test_fast_path_big_pack(registry, monkeypatch):
    recs = []
    for s in ("P1", "P2", "Q1"):
        recs.append({"bn": s, "bt": 1_690_000_000, "t": 0, "v": 31.5})
        recs += [{"t": 300 * k, "v": 30 + k % 7 / 4} for k in range(1, 3000)]
    payload = json.dumps(recs).encode()
    fast = _validate(payload, registry, True, monkeypatch)
    assert len(fast.values) == 9000 and not fast.quarantine
    _same(fast, _validate(payload, registry, False, monkeypatch))

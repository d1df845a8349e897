"""The token and alarm tables of the store, on both backends."""

from __future__ import annotations

import pandas as pd
import pytest


def test_tokens_put_list_revoke(store):
    store.put_token("t1", "alice", "operator", "a" * 64)
    store.put_token("t2", "bob", "viewer", "b" * 64)
    with pytest.raises(ValueError, match="exists already"):
        store.put_token("t3", "eve", "admin", "a" * 64)
    tokens = store.tokens()
    assert list(tokens["token_id"]) == ["t1", "t2"]
    assert tokens["revoked_at"].isna().all()
    assert list(store.tokens(token_hash="b" * 64)["name"]) == ["bob"]
    assert store.tokens(token_hash="' OR '1'='1").empty
    assert store.revoke_token("t1") is True
    assert store.revoke_token("t1") is False  # already revoked
    assert store.revoke_token("nope") is False
    row = store.tokens(token_hash="a" * 64).iloc[0]
    assert row["revoked_at"] is not pd.NaT and row["revoked_at"].tzinfo is not None


def test_alarms_put_list_update(store):
    t0 = pd.Timestamp("2025-09-10 04:00", tz="UTC")
    a = store.put_alarm(
        {"link_id": "p1", "candidates": ["p1", "p2"], "start_time": t0, "detected_at": t0 + pd.Timedelta("6h"),
         "flow_m3h": 3.5, "dma": "DMA-1"}
    )
    b = store.put_alarm({"link_id": "p9", "candidates": [], "start_time": t0, "flow_m3h": None, "dma": "DMA-2"})
    assert a != b
    alarms = store.alarms()
    assert set(alarms["alarm_id"]) == {a, b}
    one = store.alarms(alarm_id=a).iloc[0]
    assert one["candidates"] == ["p1", "p2"] and one["status"] == "open" and one["history"] == []
    assert one["start_time"] == t0 and one["flow_m3h"] == 3.5
    assert store.update_alarm(a, {"status": "acknowledged", "assigned_to": "crew 3"}, {"by": "alice", "action": "acknowledge"})
    assert store.update_alarm(a, {}, {"by": "bob", "action": "note"})
    one = store.alarms(alarm_id=a).iloc[0]
    assert one["status"] == "acknowledged" and one["assigned_to"] == "crew 3"
    assert [h["by"] for h in one["history"]] == ["alice", "bob"]
    assert list(store.alarms(status="open")["alarm_id"]) == [b]
    assert list(store.alarms(dma="DMA-1")["alarm_id"]) == [a]
    assert store.alarms(status="open' OR '1'='1").empty
    assert not store.update_alarm(12345, {"status": "repaired"})
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update_alarm(a, {"history": []})
    with pytest.raises(ValueError, match="unknown alarm status"):
        store.update_alarm(a, {"status": "fixed"})

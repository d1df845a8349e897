"""SenML parsing (RFC 8428), validation and the quarantine, on both store backends."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tirtasu.ingest import IngestResult, SenMLError, ingest_payload
from tirtasu.ingest.senml import RELATIVE_LIMIT, Record, Rejected, parse
from tirtasu.units import PA_PER_M

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def ok(records):
    assert all(isinstance(r, Record) for r in records), records
    return records


# -- RFC 8428 examples ------------------------------------------------------------------------
def test_rfc8428_5_1_1_single_datapoint():
    # §5.1.1: a single reading, base name + name
    pack = '[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]'
    (r,) = ok(parse(pack, now=NOW))
    assert (r.name, r.unit, r.value, r.time) == ("urn:dev:ow:10e2073a01080063", "Cel", 23.1, NOW)


def test_rfc8428_5_1_2_multiple_datapoints_base_fields():
    # §5.1.2: bn/bt/bu apply to the records that follow; names concatenate
    pack = """[
      {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e+09,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
      {"n":"current","t":-5,"v":1.2},
      {"n":"current","t":-4,"v":1.3},
      {"n":"current","t":-3,"v":1.4}
    ]"""
    recs = ok(parse(pack, now=NOW))
    assert [r.name for r in recs] == ["urn:dev:ow:10e2073a01080063:voltage"] + ["urn:dev:ow:10e2073a01080063:current"] * 3
    assert [r.unit for r in recs] == ["V", "A", "A", "A"]
    assert [r.time for r in recs] == [1320067464.0, 1320067459.0, 1320067460.0, 1320067461.0]
    assert [r.value for r in recs] == [120.1, 1.2, 1.3, 1.4]


def test_rfc8428_5_1_3_relative_times():
    # §4.5.3 / §5.1.3: a resolved time below 2**28 is relative to now; a missing time is now
    recs = ok(parse('[{"bn":"P1","v":1},{"t":-60,"v":2},{"t":10,"v":3}]', now=NOW))
    assert [r.time for r in recs] == [NOW, NOW - 60, NOW + 10]
    assert RELATIVE_LIMIT == 2**28


def test_rfc8428_base_value_and_unit_override():
    # §4.1: bv is added to v; a later bu replaces the earlier one; u beats bu
    recs = ok(parse('[{"bn":"Q1","bv":100,"bu":"l/s","v":1},{"v":2,"u":"m3/h"},{"bu":"m3/s","v":3}]', now=NOW))
    assert [r.value for r in recs] == [101, 102, 103]
    assert [r.unit for r in recs] == ["l/s", "m3/h", "m3/s"]


def test_plain_form_and_iso_time():
    (r,) = ok(parse(b'{"t": 1700000000.25, "v": 4.5}', now=NOW))
    assert (r.name, r.time, r.value, r.unit) == (None, 1700000000.25, 4.5, None)
    (r,) = ok(parse('{"t": "2023-11-14T22:13:20Z", "v": 1, "u": "bar"}', now=NOW))
    assert r.time == NOW and r.unit == "bar"


@pytest.mark.parametrize(
    "pack, code",
    [
        ('[{"n":"P1","vs":"on"}]', "no_value"),
        ('[{"n":"P1","vb":true}]', "no_value"),
        ('[{"n":"P1"}]', "no_value"),
        ('[{"n":"P1","v":true}]', "invalid_record"),
        ('[{"n":"P1","v":"1.5"}]', "invalid_record"),
        ('[{"n":"P 1","v":1}]', "bad_name"),
        ('[{"n":"-P1","v":1}]', "bad_name"),
        ('[{"n":"P1","v":1,"t":"yesterday"}]', "bad_time"),
        ('[{"n":"P1","v":1,"t":"2023-11-14T22:13:20"}]', "bad_time"),  # no zone
        ('[{"n":"P1","v":1,"t":1e300}]', "bad_time"),
        ('[{"n":"P1","v":1,"x_":1}]', "invalid_record"),  # must-understand field (§4.4)
        ('[{"bver":11,"n":"P1","v":1}]', "invalid_record"),
        ('[{"bn":5,"v":1}]', "invalid_record"),
    ],
)
def test_record_rejections(pack, code):
    (r,) = parse(pack, now=NOW)
    assert isinstance(r, Rejected) and r.code == code, r


def test_bad_base_spoils_followers_only():
    recs = parse('[{"n":"A","v":1},{"bt":"x","n":"B","v":2},{"n":"C","v":3},{"bt":0,"bn":"D","v":4}]', now=NOW)
    assert [type(r).__name__ for r in recs] == ["Record", "Rejected", "Rejected", "Record"]


def test_unknown_fields_ignored():
    (r,) = ok(parse('[{"n":"P1","v":1,"ut":60,"extra":{"a":[1]}}]', now=NOW))
    assert r.value == 1


@pytest.mark.parametrize(
    "payload, code",
    [(b"\xff\xfe", "not_json"), (b"{", "not_json"), (b"42", "not_senml"), (b"[]", "empty"), (b"[1,2]", "not_senml"),
     (b"[" * 100000, "not_json")],
)
def test_payload_rejections(payload, code):
    with pytest.raises(SenMLError) as info:
        parse(payload, now=NOW)
    assert info.value.code == code


# -- fuzz: nothing but SenMLError escapes ------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
_field = st.sampled_from(["bn", "bt", "bu", "bv", "bver", "n", "u", "v", "t", "ut", "vs", "vb", "s", "x_"])
_record = st.dictionaries(_field, _json | st.floats(allow_nan=True) | st.integers(min_value=-(10**400), max_value=10**400), max_size=6)


def _check(payload):
    try:
        out = parse(payload, now=NOW)
    except SenMLError:
        return
    for r in out:
        assert isinstance(r, (Record, Rejected))
        if isinstance(r, Record):
            assert math.isfinite(r.time) and isinstance(r.value, float)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes(payload):
    _check(payload)


@settings(max_examples=300, deadline=None)
@given(st.lists(_record, max_size=5) | _record | _json)
def test_fuzz_structured(doc):
    _check(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='[]{}":,.-+eE0123456789 tvnbuNaIfiy\\\x00', max_size=60))
def test_fuzz_json_like_text(text):
    _check(text)


# -- validation and the quarantine, on both backends -----------------------------------------
@pytest.fixture
def registered(store):
    store.upsert_sensors(
        pd.DataFrame(
            {
                "sensor_id": ["P1", "Q1", "WQ1", "urn:dev:mac:0024befffe804ff1:p"],
                "kind": ["pressure", "flow", "quality", "pressure"],
                "unit": ["bar", "l/s", "mg/L", None],
            }
        )
    )
    return store


def test_units_converted_with_registry_default(registered):
    t = NOW - 600
    pack = [
        {"bn": "P1", "bt": t, "v": 3.0},  # registry unit: bar
        {"t": 1, "v": 300000, "u": "Pa"},
        {"t": 2, "v": 2, "u": "hPa"},  # SenML secondary unit, via Pa
        {"bn": "Q1", "t": 0, "v": 10},  # l/s from the registry
        {"t": 1, "v": 1, "u": "m3/s"},
        {"bn": "urn:dev:mac:0024befffe804ff1:", "n": "p", "t": 0, "v": 40, "u": "m"},
        {"bn": "WQ1", "t": 0, "v": 0.4, "u": "mg/l"},
    ]
    res = ingest_payload(registered, json.dumps(pack).encode(), source="test", now=NOW)
    assert (res.accepted, res.rejected) == (7, 0), res
    df = registered.readings().set_index(["sensor_id", "time"])["value"]
    ts = pd.Timestamp(t, unit="s", tz="UTC")
    assert df[("P1", ts)] == pytest.approx(3e5 / PA_PER_M)
    assert df[("P1", ts + pd.Timedelta(1, "s"))] == pytest.approx(3e5 / PA_PER_M)
    assert df[("P1", ts + pd.Timedelta(2, "s"))] == pytest.approx(200 / PA_PER_M)
    assert df[("Q1", ts)] == pytest.approx(36.0)
    assert df[("Q1", ts + pd.Timedelta(1, "s"))] == pytest.approx(3600.0)
    assert df[("urn:dev:mac:0024befffe804ff1:p", ts)] == 40
    assert df[("WQ1", ts)] == 0.4


def test_rejections_counted_and_quarantined(registered):
    t = NOW - 600
    pack = [
        {"bn": "P1", "bt": t, "v": 3.0},  # fine
        {"n": "X", "v": 1},  # P1X: unknown sensor
        {"t": 1, "v": 3, "u": "l/s"},  # wrong unit for a pressure
        {"t": 2, "v": 1e400},  # +inf: not finite
        {"t": 7200 + 600 + 1, "v": 3},  # beyond now + 1 h
        {"t": 3, "v": 500},  # 500 bar: implausible
        {"bn": "WQ1", "t": 0, "v": 1, "u": "NTU"},  # quality in another unit than registered
        {"bn": "", "n": "", "t": 0, "v": 1},  # no name, no topic sensor
    ]
    res = ingest_payload(registered, json.dumps(pack).encode(), source="http:test", now=NOW)
    assert isinstance(res, IngestResult)
    assert res.accepted == 1 and res.rejected == 7
    assert res.reasons == {
        "unknown_sensor": 1, "wrong_unit": 2, "not_finite": 1, "future_time": 1, "implausible": 1, "no_sensor": 1,
    }
    q = registered.quarantine()
    assert len(q) == 7 and set(q["source"]) == {"http:test"}
    assert sorted(q["code"]) == sorted(c for c, n in res.reasons.items() for _ in range(n))
    assert all(q["reason"].str.len() > 5) and all(q["raw"].str.startswith("{"))
    assert res.to_dict()["rejections"][0]["code"] == "unknown_sensor"


def test_whole_payload_rejections_quarantined(registered):
    for payload, code in [(b"\x00\xff not json", "not_json"), (b'"text"', "not_senml"), (b"x" * 2000, "too_large")]:
        res = ingest_payload(registered, payload, source="http:test", topic_sensor="P1", now=NOW, max_bytes=1000)
        assert (res.accepted, res.rejected, res.reasons) == (0, 1, {code: 1})
    q = registered.quarantine()
    assert list(q["code"]) == ["not_json", "not_senml", "too_large"]
    assert "\x00" not in q["raw"][0]  # databases refuse NUL in text
    assert q["raw"][2].endswith("(2000 bytes in all)")


def test_duplicates_and_conflicts(registered):
    payload = json.dumps([{"bn": "P1", "bt": NOW - 100, "v": 1}, {"t": 1, "v": 2}, {"t": 1, "v": 2}, {"t": 1, "v": 9}])
    res = ingest_payload(registered, payload, source="a", now=NOW)
    assert (res.accepted, res.duplicates, res.rejected, res.reasons) == (2, 1, 1, {"conflict": 1})
    again = ingest_payload(registered, payload, source="a", now=NOW)  # a replay stores nothing
    assert (again.accepted, again.duplicates) == (0, 3)
    plain = ingest_payload(registered, json.dumps({"t": NOW - 100, "v": 5}), source="b", topic_sensor="P1", now=NOW)
    assert plain.reasons == {"conflict": 1}
    assert registered.quarantine(code="conflict", source="b")["raw"].iloc[0] == json.dumps({"t": NOW - 100, "v": 5})
    assert len(registered.readings()) == 2


def test_quarantine_filters(registered):
    for i in range(3):
        ingest_payload(registered, b"nope", source=f"s{i}", now=NOW)
    assert list(registered.quarantine(limit=2)["source"]) == ["s1", "s2"]
    assert list(registered.quarantine(source="s0")["code"]) == ["not_json"]
    assert registered.quarantine(start=pd.Timestamp.now(tz="UTC") + pd.Timedelta(1, "h")).empty

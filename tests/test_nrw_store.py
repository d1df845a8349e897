"""Balance inputs and DMA series from a DuckDB store holding a small constructed utility."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from tirtasu.nrw.audit import parse_audit
from tirtasu.nrw.balance import water_balance
from tirtasu.nrw.nightflow import NightFlowSettings
from tirtasu.nrw.store_io import (
    analyse_dmas_from_store,
    billed_from_store,
    billing_end_inclusive,
    dma_attributes_from_store,
    dma_inflows,
    system_input_from_store,
)
from tirtasu.store import open_store

# reservoir R feeds DMA A through L_in; A feeds B through L_ab; tank T (10 m across) sits in A
INP = """\
[TITLE]
nrw test
[JUNCTIONS]
 J1  10  1
 J2  10  1
 J3  10  1
[RESERVOIRS]
 R   60
[TANKS]
 T   40  2  0  5  10  0
[PIPES]
 L_in  R   J1  1000  300  100  0  Open
 L_t   J1  T   500   300  100  0  Open
 L_ab  J1  J2  2000  200  100  0  Open
 L_b   J2  J3  400   150  100  0  Open
[OPTIONS]
 Units CMH
[END]
"""

START = pd.Timestamp("2024-01-01", tz="UTC")
HOURS = 48
TANK_AREA = math.pi * 10**2 / 4  # 78.54 m²


@pytest.fixture
def store():
    st = open_store(":memory:")
    fill_small_utility(st)
    yield st
    st.close()


def fill_small_utility(st) -> None:
    """Two DMAs, a tank, constant flows and pressures for two days, four customers billed monthly."""
    st.put_model("net", INP)
    st.set_dmas(
        pd.DataFrame({"node_id": ["J1", "T", "J2", "J3"], "dma": ["A", "A", "B", "B"]}),
        pd.DataFrame({"dma": ["A", "A", "B"], "link_id": ["L_in", "L_ab", "L_ab"], "sign": [1, -1, 1]}),
    )
    st.upsert_sensors(
        pd.DataFrame(
            {
                "sensor_id": ["Q_in", "Q_ab", "P_a", "P_b", "L_T"],
                "kind": ["flow", "flow", "pressure", "pressure", "level"],
                "node_id": [None, None, "J1", "J2", "T"],
                "link_id": ["L_in", "L_ab", None, None, None],
                "dma": ["A", "B", "A", "B", "A"],
            }
        )
    )
    t = pd.date_range(START, periods=HOURS * 12, freq="5min")
    level = 2.0 + 0.1 * np.arange(len(t)) / 12  # rising 0.1 m/h: the tank takes 7.854 m³/h
    rows = [
        pd.DataFrame({"sensor_id": "Q_in", "time": t, "value": 30.0}),
        pd.DataFrame({"sensor_id": "Q_ab", "time": t, "value": 10.0}),
        pd.DataFrame({"sensor_id": "P_a", "time": t, "value": 45.0}),
        pd.DataFrame({"sensor_id": "P_b", "time": t, "value": 35.0}),
        pd.DataFrame({"sensor_id": "L_T", "time": t, "value": level}),
    ]
    st.add_readings(pd.concat(rows, ignore_index=True))
    st.upsert_customers(
        pd.DataFrame(
            {
                "customer_id": ["a1", "a2", "a3", "b1"],
                "node_id": ["J1", "J1", "J1", "J2"],
                "dma": ["A", "A", "A", "B"],
                "category": ["residential", "residential", "commercial", "residential"],
                "metered": [True, True, False, True],
            }
        )
    )
    # monthly bills with inclusive ends (1–31 Dec, 1–31 Jan), as the pilot writes them
    bills = []
    for cid, vol in (("a1", 31.0), ("a2", 62.0), ("a3", 93.0), ("b1", 310.0)):
        bills.append({"customer_id": cid, "period_start": "2023-12-01", "period_end": "2023-12-31", "billed_m3": vol})
        bills.append({"customer_id": cid, "period_start": "2024-01-01", "period_end": "2024-01-31", "billed_m3": vol})
    st.add_billing(pd.DataFrame(bills))


def test_dma_inflows_signs_and_tank(store):
    flows, notes = dma_inflows(store, START, START + pd.Timedelta(hours=HOURS), resample="1h")
    # A: +30 in, −10 to B, −7.854 into the tank; B: +10
    assert flows["A"].mean() == pytest.approx(30 - 10 - 0.1 * TANK_AREA, rel=1e-6)
    assert flows["B"].mean() == pytest.approx(10.0)
    assert any("tank T" in n for n in notes)
    raw, _ = dma_inflows(store, START, START + pd.Timedelta(hours=HOURS), resample="1h", storage=False)
    assert raw["A"].mean() == pytest.approx(20.0)


def test_system_input_of_a_dma_and_of_the_utility(store):
    end = START + pd.Timedelta(hours=HOURS)
    a = system_input_from_store(store, START, end, dma="B", resample="1h")
    assert a.value == pytest.approx(10.0 * HOURS) and a.coverage == 1.0
    # whole utility: the A→B transfer cancels; what is left is the reservoir inflow less what the tank kept
    total = system_input_from_store(store, START, end, resample="1h")
    assert total.value == pytest.approx((30.0 - 0.1 * TANK_AREA) * HOURS, rel=1e-6)


def test_gaps_are_filled_with_the_mean_and_reported(store):
    end = START + pd.Timedelta(hours=HOURS + 24)  # a day with no readings
    b = system_input_from_store(store, START, end, dma="B", resample="1h")
    assert b.value == pytest.approx(10.0 * (HOURS + 24))
    assert b.coverage == pytest.approx(HOURS / (HOURS + 24))
    assert "66.7 %" in b.note


def test_unknown_dma(store):
    with pytest.raises(KeyError, match="no boundary links for DMA 'Z'"):
        dma_inflows(store, START, START + pd.Timedelta(hours=2), dma="Z")


def test_billing_is_prorated_with_inclusive_ends(store):
    bills = store.billing()
    assert billing_end_inclusive(bills)
    # 10 days of January (31 days in the bill): 10/31 of each January bill
    got = billed_from_store(store, "2024-01-10", "2024-01-20", dma="A")
    assert got["billed_metered"].value == pytest.approx((31.0 + 62.0) * 10 / 31)
    assert got["billed_unmetered"].value == pytest.approx(93.0 * 10 / 31)
    # across the month boundary: 5 days of December + 5 of January
    got = billed_from_store(store, "2023-12-27", "2024-01-06", dma="B")
    assert got["billed_metered"].value == pytest.approx(310.0 * 5 / 31 + 310.0 * 5 / 31)
    assert got["billed_metered"].coverage == pytest.approx(1.0)


def test_exclusive_ends_are_recognised():
    bills = pd.DataFrame(
        {"customer_id": ["x", "x"], "period_start": ["2024-01-01", "2024-02-01"], "period_end": ["2024-02-01", "2024-03-01"]}
    )
    assert not billing_end_inclusive(bills)


def test_attributes_from_customers_and_model(store):
    attrs = dma_attributes_from_store(store)
    a, b = attrs["A"], attrs["B"]
    assert (a.connections, a.households, a.non_households) == (3, 2, 1)
    # A: L_t inside (0.5 km), L_in half (R outside, 0.5 km), L_ab half (1 km) → 2.0 km
    assert a.mains_km == pytest.approx(0.5 + 1.0 / 2 + 2.0 / 2)
    # B: L_b inside (0.4 km) + half of L_ab (1 km)
    assert b.mains_km == pytest.approx(0.4 + 1.0)


def test_audit_takes_volumes_from_the_store(store):
    text = textwrap.dedent(
        """\
        dma: B
        period: {start: 2024-01-01, end: 2024-01-03}
        system_input_volume: {value: store, cl95: 2, grade: 6}
        billed_metered: {value: store, cl95: 1}
        """
    )
    inp = parse_audit(text, store=lambda: store)
    wb = water_balance(inp)
    assert wb["system_input_volume"].value == pytest.approx(480.0)
    assert wb["billed_metered"].value == pytest.approx(310.0 * 2 / 31)
    assert "store" in wb["system_input_volume"].note


def test_night_flow_of_every_dma(store):
    s = NightFlowSettings(household_night_use_lh=0, non_household_night_use_lh=0)
    results, _ = analyse_dmas_from_store(store, START, START + pd.Timedelta(hours=HOURS), s)
    by = {r.dma: r for r in results}
    # constant flows and pressures: night leakage = inflow, NDF = 24 h
    assert by["B"].real_losses_m3d == pytest.approx(10.0 * 24)
    assert by["A"].real_losses_m3d == pytest.approx((20 - 0.1 * TANK_AREA) * 24, rel=1e-6)
    assert by["A"].average_pressure_m == pytest.approx(45.0)

"""Smart meters (AMR, ``demand`` sensors) in the NRW analyses, on a small constructed utility
whose every figure is worked by hand.

DMA A, 10 audit days from 2024-03-01:

node  smart meter               accounts                         billed per day [m³/d]
N1    1000 L/h   (24 m³/d)      c1, c2 metered                   5.82, 17.46 (0.97 × 24 × ¼, ¾)
N2    250 L/h 0–12 h, 750 L/h   c3 metered, c4 unmetered         5.82, 6.00
      12–24 h (12 m³/d), 6 h missing on 8 March
N4    2000 L/h   (48 m³/d)      c5 metered                       45.60 (0.95 × 48)
N3    100 L/h    (2.4 m³/d)     none
N5    none                      c6 metered                       10.00

Every account has bills for 15–24 Feb and 25 Feb–5 Mar (inclusive ends, 10 days each): the
days 6–10 March are not billed yet.
"""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tirtasu.nrw.audit import AuditError, parse_audit
from tirtasu.nrw.nightflow import NightFlowSettings, night_use_from_sample
from tirtasu.nrw.store_io import (
    analyse_dmas_from_store,
    billed_from_store,
    meter_registration_check,
    smart_meter_consumption,
    smart_meter_lag_fill,
)
from tirtasu.store import open_store

START = pd.Timestamp("2024-03-01", tz="UTC")
END = START + pd.Timedelta(days=10)
RATES = {"c1": 5.82, "c2": 17.46, "c3": 5.82, "c4": 6.00, "c5": 45.60, "c6": 10.00}
LEAK = 2.0  # m³/h, constant


def fill(st) -> None:
    st.set_dmas(
        pd.DataFrame({"node_id": ["N1", "N2", "N3", "N4", "N5"], "dma": "A"}),
        pd.DataFrame({"dma": ["A"], "link_id": ["L_in"], "sign": [1]}),
    )
    st.upsert_sensors(
        pd.DataFrame(
            {
                "sensor_id": ["Q_in", "D_N1", "D_N2", "D_N3", "D_N4"],
                "kind": ["flow", "demand", "demand", "demand", "demand"],
                "node_id": [None, "N1", "N2", "N3", "N4"],
                "link_id": ["L_in", None, None, None, None],
                "dma": ["A", None, None, None, None],
            }
        )
    )
    t = pd.date_range(START, END, freq="15min", inclusive="left")
    n2 = np.where(t.hour < 12, 250.0, 750.0)
    gap = (t >= "2024-03-08 12:00") & (t < "2024-03-08 18:00")
    rows = [
        pd.DataFrame({"sensor_id": "D_N1", "time": t, "value": 1000.0}),
        pd.DataFrame({"sensor_id": "D_N2", "time": t[~gap], "value": n2[~gap]}),
        pd.DataFrame({"sensor_id": "D_N3", "time": t, "value": 100.0}),
        pd.DataFrame({"sensor_id": "D_N4", "time": t, "value": 2000.0}),
        # inflow at night: what the night-use estimate says (see test_night_use…) plus the leak
        pd.DataFrame({"sensor_id": "Q_in", "time": t, "value": 3.25 * 90.7 / 80.7 + 0.1 + LEAK}),
    ]
    st.add_readings(pd.concat(rows, ignore_index=True))
    st.upsert_customers(
        pd.DataFrame(
            {
                "customer_id": list(RATES),
                "node_id": ["N1", "N1", "N2", "N2", "N4", "N5"],
                "dma": "A",
                "category": ["residential", "residential", "residential", "commercial", "commercial", "residential"],
                "metered": [True, True, True, False, True, True],
            }
        )
    )
    bills = []
    for cid, rate in RATES.items():
        bills.append({"customer_id": cid, "period_start": "2024-02-15", "period_end": "2024-02-24", "billed_m3": 10 * rate})
        bills.append({"customer_id": cid, "period_start": "2024-02-25", "period_end": "2024-03-05", "billed_m3": 10 * rate})
    st.add_billing(pd.DataFrame(bills))


@pytest.fixture
def amr(tmp_path):
    st = open_store(tmp_path / "amr.duckdb")
    fill(st)
    yield st
    st.close()


# hand calculation of the meter check: nodes N1 and N4 (all accounts metered), 1–5 March
BILLED = (5.82 + 17.46) * 5 + 45.60 * 5  # 116.4 + 228
SMART = 24 * 5 + 48 * 5  # 120 + 240
RATIO = BILLED / SMART
_resid = [(5.82 + 17.46) * 5 - RATIO * 120, 45.60 * 5 - RATIO * 240]
# Cochran's ratio estimator: (1 − f)/(n x̄²) Σ e²/(n − 1), f = 3 checked of 5 metered accounts
RATIO_CL95 = 1.96 * math.sqrt((1 - 3 / 5) / (2 * 180.0**2) * sum(e * e for e in _resid) / 1)


def test_smart_meter_consumption_with_a_gap_filled_by_hour_of_day(amr):
    sm = smart_meter_consumption(amr, START, END)
    m = sm.meters.set_index("sensor_id")
    # the 6 missing afternoon hours take the afternoon's 750 L/h, not the day's 500: 12 m³/d stays
    assert m.loc["D_N2", "volume_m3"] == pytest.approx(120.0)
    assert m.loc["D_N2", "coverage"] == pytest.approx(1 - 6 / 240)
    assert sm.value == pytest.approx(240 + 120 + 24 + 480)
    assert sm.coverage == pytest.approx(1 - 6 / 960)
    assert (m.loc["D_N1", "accounts"], m.loc["D_N2", "accounts"], m.loc["D_N2", "metered_accounts"]) == (2, 2, 1)
    assert sm.nodes_without_accounts == ["N3"]
    assert "N3" in sm.note and "99.4 % of meter-hours" in sm.note
    assert sm.daily["D_N2"].to_numpy() == pytest.approx(12.0)


def test_meter_check_by_hand(amr):
    c = meter_registration_check(amr, START, END)
    assert (c.nodes, c.accounts) == (2, 3)
    assert c.billed_m3 == pytest.approx(BILLED) and c.smart_m3 == pytest.approx(SMART)
    assert c.ratio == pytest.approx(RATIO)
    assert c.under_registration == pytest.approx(1 - 344.4 / 360)
    assert c.cl95 == pytest.approx(RATIO_CL95)


def test_unbilled_days_come_from_the_smart_meters(amr):
    lag = smart_meter_lag_fill(amr, START, END)
    # 6–10 March for c1, c2 (N1: 120 m³), c3 (its share of N2: 5.82/11.82 of 60 m³), c5 (N4: 240 m³),
    # on the billing meters' footing (× billed/smart); c4 is unmetered, c6 has no smart meter
    expected = RATIO * (120 + 60 * 5.82 / 11.82 + 240)
    assert lag.value == pytest.approx(expected)
    assert (lag.customer_days, lag.accounts) == (20, 4)
    got = billed_from_store(amr, START, END)
    billed = 0.5 * 10 * (5.82 + 17.46 + 5.82 + 45.60 + 10.00)  # 1–5 March: half of the second bills
    assert got["billed_metered"].value == pytest.approx(billed + expected)
    assert got["billed_unmetered"].value == pytest.approx(0.5 * 10 * 6.00)
    assert "smart meter" in got["billed_metered"].note
    # bills cover half the customer-days; the smart meters 20 of the 30 left of 60
    assert "cover 50.0 % of customer-days" in got["billed_metered"].note
    assert "together cover 83.3 %" in got["billed_metered"].note
    plain = billed_from_store(amr, START, END, smart_meters=False)
    assert plain["billed_metered"].value == pytest.approx(billed)


def test_audit_takes_under_registration_from_the_check_and_refuses_unbilled_metered(amr):
    text = textwrap.dedent(
        """\
        period: {start: 2024-03-01, end: 2024-03-11}
        system_input_volume: 2000
        billed_metered: {value: store, cl95: 1}
        customer_meter_inaccuracies: {pct: store}
        """
    )
    inp = parse_audit(text, store=lambda: amr)
    cmi = inp.customer_meter_inaccuracies
    assert cmi.pct == pytest.approx(100 * (1 - RATIO))
    assert cmi.cl95 == pytest.approx(RATIO_CL95 / (1 - RATIO))
    assert cmi.under_registration and cmi.of == "metered_consumption"
    assert "smart meters" in cmi.note
    bad = text + "unbilled_metered: {value: store}\n"
    with pytest.raises(AuditError, match=r"line 5: unbilled_metered: cannot be taken from the store"):
        parse_audit(bad, store=lambda: amr)
    with pytest.raises(AuditError, match="only customer_meter_inaccuracies"):
        parse_audit(text + "unauthorized_consumption: {pct: store}\n", store=lambda: amr)


def test_night_use_from_a_sample_by_hand():
    nights = pd.date_range("2024-03-01", periods=3, freq="D")
    y = pd.DataFrame({"a": [1.0, 3.0, np.nan], "b": [1.0, 3.0, 2.0], "c": [4.0, 2.0, 3.0]}, index=nights)
    x = pd.Series({"a": 1.0, "b": 2.0, "c": 3.0})
    use = night_use_from_sample(y.iloc[:2], x, 12.0, population=6, unscaled=0.5, meter_cl95=0.0)
    # night 1: 6/6 × 12 + 0.5; night 2: 8/6 × 12 + 0.5
    assert use.per_night.to_numpy() == pytest.approx([12.5, 16.5])
    # ȳ = (2, 2, 3), R = 7/6, residuals (5/6, −2/6, −3/6): var R = (1 − 3/6)/(3·2²) · (38/36)/2
    var_r = 0.5 / 12 * (38 / 36) / 2
    assert use.sigma_m3h == pytest.approx(math.sqrt(var_r) * 12)
    with_meters = night_use_from_sample(y.iloc[:2], x, 12.0, population=6, unscaled=0.5, meter_cl95=0.05)
    assert with_meters.sigma_m3h == pytest.approx(math.sqrt(var_r * 144 + (14.5 * 0.05 / 1.96) ** 2))
    # a meter missing on a night: the ratio of that night uses the others (5/5 × 12)
    third = night_use_from_sample(y, x, 12.0)
    assert third.per_night.iloc[2] == pytest.approx(12.0)
    with pytest.raises(ValueError, match="two or more"):
        night_use_from_sample(y[["a"]], x, 12.0)


def test_night_flow_with_smart_meters(amr):
    s = NightFlowSettings(n1=1.0, background_mains_lkmh=0, background_connections_lch=0, background_private_lkmh=0)
    (r,), _ = analyse_dmas_from_store(amr, START, END, s)
    # night use: (1 + 0.25 + 2) m³/h on N1, N2, N4, scaled by billed volume per day
    # (23.28 + 11.82 + 45.60 = 80.7 of 90.7 m³/d), + 0.1 m³/h on N3 (no account), as measured
    use = 3.25 * 90.7 / 80.7 + 0.1
    assert r.nights["legit_night_use_m3h"].to_numpy() == pytest.approx(use)
    assert r.real_losses_m3d == pytest.approx(LEAK * 24)  # no pressure: NDF 24 h
    assert r.night_use.method.startswith("smart meters on 3 of 4 customer nodes")
    assert not any("allowances" in w for w in r.warnings)
    # σ: the sample's ratio estimator (f = 3 of 4 nodes) and the meters' ±5 %
    xs, ys = np.array([23.28, 11.82, 45.60]), np.array([1.0, 0.25, 2.0])
    R = ys.sum() / xs.sum()
    var_r = (1 - 3 / 4) / (3 * xs.mean() ** 2) * ((ys - R * xs) ** 2).sum() / 2
    assert r.night_use.sigma_m3h == pytest.approx(math.sqrt(var_r * 90.7**2 + (use * 0.05 / 1.96) ** 2))
    # precedence: reference nights > smart meters > allowances
    (ref,), _ = analyse_dmas_from_store(amr, START, END, s, reference=("2024-03-01", "2024-03-04"))
    assert ref.night_use.method.startswith("reference nights")
    (allow,), _ = analyse_dmas_from_store(amr, START, END, s, smart_meters=False)
    assert allow.night_use.method.startswith("allowances")


def test_cli_dma_uses_smart_meters(amr, tmp_path):
    from tirtasu.cli import app

    amr.close()
    runner = CliRunner()
    args = ["nrw", "dma", "--store", str(tmp_path / "amr.duckdb"), "--from", "2024-03-01", "--to", "2024-03-11", "--json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    (d,) = json.loads(out.output)["dmas"]
    assert d["night_use_method"].startswith("smart meters")
    off = runner.invoke(app, args + ["--no-smart-meters"])
    assert json.loads(off.output)["dmas"][0]["night_use_method"].startswith("allowances")
    assert "--no-smart-meters" in runner.invoke(app, ["nrw", "dma", "--help"]).output


def test_single_calendar_bills_are_read_inclusive():
    from tirtasu.nrw.store_io import billing_end_inclusive

    one = pd.DataFrame({"customer_id": ["x", "y"], "period_start": ["2025-09-01"] * 2, "period_end": ["2025-09-07"] * 2})
    assert billing_end_inclusive(one)  # a partial month, 1–7 September
    month = one.assign(period_end="2025-09-30")
    assert billing_end_inclusive(month)
    assert not billing_end_inclusive(one.assign(period_end="2025-10-01"))

"""DMA night-flow analysis on constructed series whose leakage is known exactly (hand arithmetic
in each test), then on the store's plumbing: inflows from boundary meters, tanks, attributes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tirtasu.nrw.nightflow import (
    DMAAttributes,
    NightFlowSettings,
    analyse_dma,
    legitimate_night_use,
    minimum_night_flow,
    night_day_factor,
    rank_dmas,
)

TZ = "Asia/Jakarta"  # UTC+7: the night hours are local


def local_index(days: int, start="2024-03-04") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=days * 96, freq="15min", tz=TZ)


def square_pressure(idx, night=60.0, day=40.0):
    """60 m from 00:00 to 06:00, 40 m from 06:00 to 24:00 (local)."""
    return pd.Series(np.where(idx.hour < 6, night, day), index=idx, dtype=float)


def to_utc(s: pd.Series) -> pd.Series:
    return s.tz_convert("UTC")


ATTRS = DMAAttributes("Z", mains_km=10.0, connections=1050, households=1000, non_households=50, exceptional_night_use_m3h=0.5)
# legitimate night use = 1000 × 1.7 L/h + 50 × 8 L/h + 0.5 m³/h = 1.7 + 0.4 + 0.5 = 2.6 m³/h
LNU = 2.6


def constructed(days=8, n1=1.0):
    """Inflow = consumption + leak, leak = C·P^N1 with 6 m³/h at 60 m; consumption equal to the
    legitimate night use between 01:00 and 05:00, higher by day."""
    idx = local_index(days)
    p = square_pressure(idx)
    leak = 6.0 * (p / 60.0) ** n1
    consumption = pd.Series(np.where((idx.hour >= 1) & (idx.hour < 5), LNU, 30.0), index=idx)
    return to_utc(consumption + leak), to_utc(p), to_utc(leak)


def test_legitimate_night_use():
    assert legitimate_night_use(ATTRS) == pytest.approx(LNU)


def test_night_day_factor_by_hand():
    idx = local_index(1)
    p = square_pressure(idx)
    # N1 = 1: 6 h at 60/60 + 18 h at 40/60 → 6 + 12 = 18 h
    assert night_day_factor(p, 60.0, 1.0) == pytest.approx(18.0)
    # N1 = 0.5: 6 + 18·√(2/3) = 20.697 h; N1 = 1.5: 6 + 18·(2/3)^1.5 = 15.798 h
    assert night_day_factor(p, 60.0, 0.5) == pytest.approx(6 + 18 * math.sqrt(2 / 3))
    assert night_day_factor(p, 60.0, 1.5) == pytest.approx(6 + 18 * (2 / 3) ** 1.5)
    # constant pressure: 24 h whatever N1
    assert night_day_factor(pd.Series(50.0, index=idx), 50.0, 1.3) == pytest.approx(24.0)


def test_minimum_night_flow_finds_the_dip_in_local_time():
    idx = local_index(2)
    q = pd.Series(20.0, index=idx)
    q[(idx.hour == 3) & (idx.day == 4)] = 5.0  # 03:00–04:00 local on the 4th
    q[(idx.hour == 2) & (idx.minute >= 30) & (idx.day == 5)] = 7.0  # 02:30–03:00 on the 5th
    mnf = minimum_night_flow(to_utc(q), NightFlowSettings(tz=TZ))
    assert mnf["mnf_m3h"].iloc[0] == pytest.approx(5.0)
    assert mnf["mnf_start"].iloc[0] == pd.Timestamp("2024-03-04 03:00", tz=TZ)
    # a 1 h window starting 02:30 averages 30 min at 7 and 30 min at 20 → 13.5, the lowest that night
    assert mnf["mnf_m3h"].iloc[1] == pytest.approx(13.5)


@pytest.mark.parametrize("n1", [0.5, 1.0, 1.5])
def test_daily_real_losses_match_the_constructed_leak(n1):
    inflow, p, leak = constructed(n1=n1)
    r = analyse_dma(inflow, p, ATTRS, NightFlowSettings(tz=TZ, n1=n1))
    truth = float(leak.sum()) * 0.25 / 8  # m³/day
    # by hand: 6 m³/h at night × (6 h + 18 h·(2/3)^N1)
    assert truth == pytest.approx(6 * (6 + 18 * (2 / 3) ** n1))
    assert r.real_losses_m3d == pytest.approx(truth, rel=1e-9)
    n = r.nights
    assert np.allclose(n["mnf_m3h"], LNU + 6.0) and np.allclose(n["night_pressure_m"], 60.0)
    assert len(n) == 8
    assert r.average_pressure_m == pytest.approx((6 * 60 + 18 * 40) / 24)  # 45 m


def test_confidence_limit_and_babe_split_by_hand():
    inflow, p, _ = constructed(n1=1.0)
    s = NightFlowSettings(tz=TZ, n1=1.0)
    r = analyse_dma(inflow, p, ATTRS, s)
    ndf = 18.0
    # every night is the same: no scatter; meter ±2 % on MNF·NDF; night use ±50 %
    meter = 0.02 * (LNU + 6.0) * ndf / 1.96
    use = 0.5 * LNU * ndf / 1.96
    assert r.cl95_m3d == pytest.approx(1.96 * math.hypot(meter, use))
    # background at night: (40 L/km/h · 10 km + 3 L/conn/h · 1050) · (60/50)^1.5 = 3.55 m³/h · 1.3145
    bg_night = 3.55 * (60 / 50) ** 1.5  # 4.667 m³/h
    ndf_bg = 6 + 18 * (2 / 3) ** 1.5  # 15.798 h
    assert r.background_m3d == pytest.approx(bg_night * ndf_bg)
    assert r.bursts_m3d == pytest.approx(6 * 18 - bg_night * ndf_bg)
    # UARL at the average pressure 45 m: (18·10 + 0.8·1050)·45 L/day = 45.9 m³/day
    assert r.uarl_m3d == pytest.approx(45.9)
    assert r.ili == pytest.approx(108 / 45.9)
    assert r.recoverable_m3d == pytest.approx(108 - 45.9)
    assert r.real_losses_l_conn_day == pytest.approx(108_000 / 1050)
    assert r.real_losses_m3_km_day == pytest.approx(10.8)


def test_without_pressure_the_night_day_factor_is_24h():
    inflow, _, _ = constructed()
    r = analyse_dma(inflow, None, ATTRS, NightFlowSettings(tz=TZ))
    assert r.real_losses_m3d == pytest.approx(6.0 * 24)
    assert any("no pressure" in w for w in r.warnings)


def test_reference_nights_calibrate_a_weekly_night_use():
    """Night use is 4 m³/h, 7 m³/h on Friday and Saturday nights (local); no leak for the first
    week, then a 5 m³/h leak; constant pressure. Calibrating on the first week gives the leak
    back exactly: 14 days × 120 m³/d over 21 days = 80 m³/d."""
    idx = local_index(21)  # Monday 4 March 2024 onwards
    night_use = np.where(idx.day_of_week.isin([4, 5]), 7.0, 4.0)
    consumption = np.where((idx.hour >= 1) & (idx.hour < 5), night_use, 25.0)
    leak = np.where(idx >= pd.Timestamp("2024-03-11", tz=TZ), 5.0, 0.0)
    inflow = to_utc(pd.Series(consumption + leak, index=idx))
    p = to_utc(pd.Series(50.0, index=idx))
    s = NightFlowSettings(tz=TZ, background_mains_lkmh=0, background_connections_lch=0, background_private_lkmh=0)
    r = analyse_dma(inflow, p, ATTRS, s, reference=("2024-03-04", "2024-03-11"))
    assert r.real_losses_m3d == pytest.approx(14 * 5 * 24 / 21)
    assert r.nights["legit_night_use_m3h"].max() == pytest.approx(7.0)
    assert r.nights["legit_night_use_m3h"].min() == pytest.approx(4.0)
    # allowances (2.6 m³/h) would have counted the weekly night use as leakage
    r2 = analyse_dma(inflow, p, ATTRS, s)
    assert r2.real_losses_m3d > r.real_losses_m3d + 30


def test_reference_outside_the_record_is_an_error():
    inflow, p, _ = constructed()
    with pytest.raises(ValueError, match="no reference"):
        analyse_dma(inflow, p, ATTRS, NightFlowSettings(tz=TZ), reference=("2030-01-01", "2030-01-08"))


def test_ranking_by_recoverable_leakage():
    base_in, p, _ = constructed()
    results = []
    for name, extra in (("small", 0.0), ("big", 4.0), ("mid", 2.0)):
        a = DMAAttributes(name, mains_km=10.0, connections=1050, households=1000, non_households=50, exceptional_night_use_m3h=0.5)
        results.append(analyse_dma(base_in + extra, p, a, NightFlowSettings(tz=TZ)))
    results.append(analyse_dma(base_in + 9.0, p, DMAAttributes("no attributes"), NightFlowSettings(tz=TZ)))
    ranking = rank_dmas(results)
    assert list(ranking.index) == ["big", "mid", "small", "no attributes"]
    assert list(ranking["rank"]) == [1, 2, 3, 4]
    # extra 4 m³/h of night leakage × NDF 18 h on top of 108 m³/d, less UARL 45.9
    assert ranking.loc["big", "recoverable_m3d"] == pytest.approx(108 + 4 * 18 - 45.9)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="N1"):
        NightFlowSettings(n1=2.0)
    with pytest.raises(ValueError, match="multiple"):
        NightFlowSettings(window="50min", step="15min")

"""Water balance and its 95 % confidence limits, against a published worked example and hand
calculations (the arithmetic is written out here, independent of the code under test)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tirtasu.nrw.balance import AuditInputs, Percent, Source, Volume, water_balance

Z = 1.96


def sigma(v, cl):
    return v * cl / Z


# ---------------------------------------------------------------------------------------------
# Published example: Thornton, Sturm & Kunkel, *Water Loss Control*, 2nd ed. (McGraw-Hill 2008),
# section 7.8, p. 111 (p. 93 of chapter 7), Table 7.5 "Calculation of confidence limits for
# nonrevenue water" (source SFPUC). Annual volumes in million gallons:
#   sources 7,512.80 / 10,519.84 / 6,580.71 / 4,411.61 / 7.60, each "2.6 %",
#   variances 9,553.7 / 18,732.1 / 7,330.2 / 3,294.3 / 0.0 (gal² × 10¹²)
#   total system input 29,032.56 "1.3 %", variance 38,910.3
#   billed metered authorized 24,778.64 "1.1 %", variance 20,237.7
#   nonrevenue water 4,253.92 "11.2 %", variance 59,148.0
# The printed limits are rounded: the variances printed imply 2.55 % per source and 1.1253 %
# for billed consumption. With the printed variances, by hand:
#   CL95(NRW) = 1.96 · √(38,910.3 + 20,237.7) / 4,253.92 = 1.96 · 243.204 / 4,253.92 = 11.206 %
# ---------------------------------------------------------------------------------------------
SFPUC_SOURCES = [7512.80, 10519.84, 6580.71, 4411.61, 7.60]
SFPUC_VARIANCES = [9553.7, 18732.1, 7330.2, 3294.3, 0.0]


def test_published_table_is_self_consistent_by_hand():
    # each printed variance is (V · 2.55 % / 1.96)²: the table's "2.6 %" is rounded
    for v, var in zip(SFPUC_SOURCES, SFPUC_VARIANCES):
        assert (v * 0.0255 / 1.96) ** 2 == pytest.approx(var, abs=0.6)
    assert sum(SFPUC_VARIANCES) == pytest.approx(38910.3, abs=0.05)
    assert 1.96 * math.sqrt(38910.3 + 20237.7) / 4253.92 == pytest.approx(0.11206, abs=5e-5)
    # with the rounded 1.3 % and 1.1 % the limit would be 10.9 %, not 11.2 %:
    v_a = (29032.56 * 0.013 / 1.96) ** 2  # 37,081
    v_b = (24778.64 * 0.011 / 1.96) ** 2  # 19,339
    assert 1.96 * math.sqrt(v_a + v_b) / 4253.92 == pytest.approx(0.1094, abs=5e-4)


def test_water_loss_control_table_7_5_nrw_plus_minus_11_2_percent():
    billed_cl = 1.96 * math.sqrt(20237.7) / 24778.64  # 1.1253 %, the limit the table used
    inputs = AuditInputs(
        sources=[Source(f"source {i + 1}", v, cl95=0.0255) for i, v in enumerate(SFPUC_SOURCES)],
        billed_metered=Volume(24778.64, cl95=billed_cl),
    )
    wb = water_balance(inputs)
    assert wb["system_input_volume"].value == pytest.approx(29032.56, abs=1e-6)
    assert wb["non_revenue_water"].value == pytest.approx(4253.92, abs=1e-6)
    # variances as printed
    assert (wb["system_input_volume"].cl95_abs / Z) ** 2 == pytest.approx(38910.3, rel=1e-4)
    assert (wb["non_revenue_water"].cl95_abs / Z) ** 2 == pytest.approx(59148.0, rel=1e-4)
    # the limits as printed: 1.3 %, 1.1 %, 11.2 %
    assert round(100 * wb["system_input_volume"].cl95, 1) == 1.3
    assert round(100 * wb["billed_metered"].cl95, 1) == 1.1
    assert round(100 * wb["non_revenue_water"].cl95, 1) == 11.2


# ---------------------------------------------------------------------------------------------
# A full balance by hand
# ---------------------------------------------------------------------------------------------
P_CMI = 0.02  # customer meters under-register by 2 %


def _hand_inputs(pct_cl=None):
    return AuditInputs(
        sources=[Source("works", 100_000.0, cl95=0.02, grade=8)],
        water_exported=Volume(5_000.0, cl95=0.01, grade=9),
        billed_metered=Volume(60_000.0, cl95=0.01, grade=8),
        billed_unmetered=Volume(2_000.0, cl95=0.10, grade=4),
        unbilled_metered=Volume(1_000.0, cl95=0.05, grade=6),
        unbilled_unmetered=Volume(500.0, cl95=0.50, grade=3),
        unauthorized_consumption=Percent(1.0, "water_supplied", cl95=pct_cl),
        customer_meter_inaccuracies=Percent(2.0, "metered_consumption", cl95=pct_cl, under_registration=True),
        systematic_data_handling_errors=Percent(0.5, "billed_metered", cl95=pct_cl),
    )


def test_components_by_hand():
    wb = water_balance(_hand_inputs())
    ws = 100_000 - 5_000  # 95,000
    bac = 60_000 + 2_000  # 62,000
    uac = 1_000 + 500  # 1,500
    ac = bac + uac  # 63,500
    wl = ws - ac  # 31,500
    uc = 0.01 * ws  # 950
    cmi = (60_000 + 1_000) * P_CMI / (1 - P_CMI)  # 1,244.898: what 2 % under-registering meters missed
    sdhe = 0.005 * 60_000  # 300
    al = uc + cmi + sdhe  # 2,494.898
    expected = {
        "water_supplied": ws,
        "billed_authorized": bac,
        "unbilled_authorized": uac,
        "authorized_consumption": ac,
        "water_losses": wl,
        "unauthorized_consumption": uc,
        "customer_meter_inaccuracies": cmi,
        "systematic_data_handling_errors": sdhe,
        "apparent_losses": al,
        "real_losses": wl - al,  # 29,005.102
        "non_revenue_water": ws - bac,  # 33,000
        "revenue_water": bac + 5_000,
    }
    for key, value in expected.items():
        assert wb[key].value == pytest.approx(value, rel=1e-12), key
    # the two definitions of NRW agree
    assert wb["non_revenue_water"].value == pytest.approx(uac + al + (wl - al))
    assert wb["nrw_pct_siv"].value == pytest.approx(100 * 33_000 / 100_000)
    assert wb["nrw_pct_supplied"].value == pytest.approx(100 * 33_000 / 95_000)


def test_variances_add_for_sums_and_differences():
    wb = water_balance(_hand_inputs())
    # NRW = SIV − exported − billed metered − billed unmetered: variances add
    var_nrw = sigma(100_000, 0.02) ** 2 + sigma(5_000, 0.01) ** 2 + sigma(60_000, 0.01) ** 2 + sigma(2_000, 0.10) ** 2
    assert wb["non_revenue_water"].cl95_abs == pytest.approx(Z * math.sqrt(var_nrw), rel=1e-6)
    var_ac = sigma(60_000, 0.01) ** 2 + sigma(2_000, 0.10) ** 2 + sigma(1_000, 0.05) ** 2 + sigma(500, 0.5) ** 2
    assert wb["authorized_consumption"].cl95_abs == pytest.approx(Z * math.sqrt(var_ac), rel=1e-6)


def test_percentage_items_carry_their_correlation():
    # Real losses = SIV − exp − BM − BU − UM − UU − 1 %·(SIV − exp) − (BM + UM)·p/(1−p) − 0.5 %·BM
    # so its sensitivity to each input is (by hand):
    k = 1 / (1 - P_CMI)
    coef = {
        "siv": (0.99, sigma(100_000, 0.02)),
        "exp": (-0.99, sigma(5_000, 0.01)),
        "bm": (-(k + 0.005), sigma(60_000, 0.01)),
        "bu": (-1.0, sigma(2_000, 0.10)),
        "um": (-k, sigma(1_000, 0.05)),
        "uu": (-1.0, sigma(500, 0.5)),
    }
    var = sum((c * s) ** 2 for c, s in coef.values())
    wb = water_balance(_hand_inputs())
    assert wb["real_losses"].cl95_abs == pytest.approx(Z * math.sqrt(var), rel=1e-6)


def test_percentage_uncertainty_is_relative_to_the_volume():
    wb = water_balance(_hand_inputs(pct_cl=0.5))
    uc = wb["unauthorized_consumption"]
    # ±50 % on the percentage, plus the (small) uncertainty of water supplied it applies to
    base = Z * math.sqrt((0.01 * sigma(100_000, 0.02)) ** 2 + (0.01 * sigma(5_000, 0.01)) ** 2)
    assert uc.cl95_abs == pytest.approx(math.hypot(0.5 * 950, base), rel=1e-6)


def test_bulk_meter_error_correction():
    # a meter reading 2 % high recorded 102,000 m³: the water was 102,000 / 1.02 = 100,000 m³
    inp = AuditInputs(sources=[Source("w", 102_000.0, meter_error_pct=2.0)], billed_metered=Volume(70_000.0))
    assert water_balance(inp)["system_input_volume"].value == pytest.approx(100_000.0)
    # one reading 5 % low recorded 95,000: 95,000 / 0.95 = 100,000
    inp = AuditInputs(sources=[Source("w", 95_000.0, meter_error_pct=-5.0)], billed_metered=Volume(70_000.0))
    assert water_balance(inp)["system_input_volume"].value == pytest.approx(100_000.0)


def test_own_and_imported_sources():
    inp = AuditInputs(
        sources=[Source("own", 80_000.0, cl95=0.02), Source("bought", 20_000.0, cl95=0.01, imported=True)],
        billed_metered=Volume(60_000.0),
    )
    wb = water_balance(inp)
    assert wb["own_sources"].value == 80_000.0
    assert wb["water_imported"].value == 20_000.0
    assert wb["system_input_volume"].cl95_abs == pytest.approx(Z * math.hypot(sigma(80_000, 0.02), sigma(20_000, 0.01)))


def test_indicators_by_hand():
    inp = _hand_inputs()
    inp.start, inp.end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-04-10", tz="UTC")
    inp.mains_length_km, inp.service_connections, inp.private_pipe_length_km, inp.average_pressure_m = 100.0, 6_000.0, 3.0, 40.0
    inp.variable_production_cost, inp.customer_retail_unit_cost = 0.5, 1.2
    wb = water_balance(inp)
    days = 100  # 1 Jan – 10 Apr 2024: 31 + 29 + 31 + 9
    rl = 95_000 - 63_500 - (950 + 61_000 * 0.02 / 0.98 + 300)  # 29,005.102 m³
    al = 950 + 61_000 * 0.02 / 0.98 + 300
    uarl_day = (18 * 100 + 0.8 * 6_000 + 25 * 3) * 40  # 267,000 L/day
    assert wb["real_losses_l_conn_day"].value == pytest.approx(rl * 1000 / 6_000 / days)  # 48.34 L/conn/d
    assert wb["real_losses_m3_km_day"].value == pytest.approx(rl / 100 / days)
    assert wb["uarl"].value == pytest.approx(uarl_day * days / 1000)  # 26,700 m³
    assert wb["uarl_l_conn_day"].value == pytest.approx(uarl_day / 6_000)  # 44.5
    assert wb["ili"].value == pytest.approx(rl / 26_700)  # 1.086
    assert wb.bands["developing"].band == "A" and wb.bands["developed"].band == "A"
    # values per year: real losses at 0.5/m³, apparent at 1.2/m³, unbilled authorized at 0.5/m³
    assert wb["value_real_losses"].value == pytest.approx(rl * 0.5 * 365 / days)
    assert wb["value_apparent_losses"].value == pytest.approx(al * 1.2 * 365 / days)
    assert wb["value_nrw"].value == pytest.approx((rl * 0.5 + al * 1.2 + 1_500 * 0.5) * 365 / days)
    # ILI carries the limit of real losses (UARL taken as exact)
    assert wb["ili"].cl95 == pytest.approx(wb["real_losses"].cl95, rel=1e-6)


def test_validity_score_is_the_volume_weighted_grade():
    wb = water_balance(_hand_inputs())
    # graded inputs: SIV 100,000 (8), exported 5,000 (9), BM 60,000 (8), BU 2,000 (4), UM 1,000 (6), UU 500 (3)
    num = 100_000 * 8 + 5_000 * 9 + 60_000 * 8 + 2_000 * 4 + 1_000 * 6 + 500 * 3
    den = 100_000 + 5_000 + 60_000 + 2_000 + 1_000 + 500
    assert wb.validity_score == pytest.approx(10 * num / den)  # 79.6


def test_monte_carlo_agrees_with_linear_propagation():
    wb = water_balance(_hand_inputs(pct_cl=0.4), monte_carlo=40_000, seed=7)
    mc = wb.monte_carlo.table
    for key in ("non_revenue_water", "real_losses", "apparent_losses", "water_losses", "nrw_pct_siv"):
        analytic = wb[key].cl95_abs / Z
        assert mc.loc[key, "std"] == pytest.approx(analytic, rel=0.03), key
        assert mc.loc[key, "mean"] == pytest.approx(wb[key].value, rel=0.01), key


def test_negative_real_losses_are_flagged():
    inp = AuditInputs(sources=[Source("w", 100.0)], billed_metered=Volume(120.0))
    wb = water_balance(inp)
    assert wb["real_losses"].value == pytest.approx(-20.0)
    assert any("negative" in w for w in wb.warnings)


def test_needs_a_source():
    with pytest.raises(ValueError, match="source"):
        water_balance(AuditInputs(sources=[], billed_metered=Volume(1.0)))


def test_percent_base_is_checked():
    with pytest.raises(ValueError, match="apply to one of"):
        Percent(1.0, "everything")


def test_unbilled_unmetered_cannot_be_a_share_of_itself():
    inp = AuditInputs(
        sources=[Source("w", 100.0)],
        billed_metered=Volume(60.0),
        unbilled_unmetered=Percent(1.0, "authorized_consumption"),
    )
    with pytest.raises(ValueError, match="part of it"):
        water_balance(inp)

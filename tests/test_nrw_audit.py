"""Audit YAML files and volume units: conversions at the edge, errors naming key and line."""

from __future__ import annotations

import textwrap

import pytest

from tirtasu.nrw.audit import AuditError, load_audit, parse_audit
from tirtasu.nrw.balance import Percent, water_balance
from tirtasu.nrw.volumes import is_rate, to_m3

US_GAL = 3.785411784e-3  # m³, by definition (231 in³)


def audit(text: str, **kw):
    return parse_audit(textwrap.dedent(text), source="a.yaml", **kw)


# -- units ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, unit, days, m3",
    [
        (1.0, "m3", None, 1.0),
        (1.0, "m³", None, 1.0),
        (2.5, "ML", None, 2_500.0),  # megalitre, never millilitre
        (3.0, "kL", None, 3.0),
        (1_000.0, "L", None, 1.0),
        (0.5, "GL", None, 500_000.0),
        (1.0, "MG", None, 1e6 * US_GAL),  # million US gallons = 3,785.41 m³
        (2.0, "Mm3", None, 2e6),
        (1.0, "AF", None, 1233.48183754752),
        (100.0, "m3/day", 365, 36_500.0),
        (100.0, "m3/d", 30, 3_000.0),
        (2.0, "ML/d", 10, 20_000.0),
        (10.0, "L/s", 1, 864.0),  # 10 L/s · 86,400 s
        (5.0, "m3/h", 2, 240.0),
        (1.0, "MGD", 1, 1e6 * US_GAL),  # via tirtasu.units
        (1_000.0, "m3/yr", 365, 1_000.0),
        (1_000.0, "m3/month", 365, 12_000.0),
    ],
)
def test_volume_units(value, unit, days, m3):
    assert to_m3(value, unit, days) == pytest.approx(m3, rel=1e-12)


def test_rate_needs_a_period_and_unknown_units_are_refused():
    assert is_rate("L/s") and not is_rate("ML")
    with pytest.raises(ValueError, match="needs a period"):
        to_m3(1.0, "m3/day")
    with pytest.raises(ValueError, match="unknown volume unit 'furlongs'"):
        to_m3(1.0, "furlongs")


# -- parsing ----------------------------------------------------------------------------------
FULL = """\
name: Zone 7
period: {start: 2024-01-01, end: 2024-04-10}
units: ML
currency: IDR
country_group: developed
system_input_volume:
  - {name: A, value: 10, cl95: 2, grade: 7, meter_error_pct: 2}
  - {name: B, value: 500, unit: m3/day, cl95: 3}
water_imported: {value: 1, cl95: 1.5, grade: 9}
water_exported: 0.5
billed_metered: {value: 6, cl95: 1, grade: 8}
billed_unmetered: {value: 300, unit: m3}
unbilled_metered: 0.1
unbilled_unmetered: {pct: 1.25}
unauthorized_consumption: {pct: 0.25, cl95: 50, grade: 3}
customer_meter_inaccuracies: {pct: 3, cl95: 30}
systematic_data_handling_errors: {value: 20, unit: m3}
mains_length_km: {value: 62.137119, unit: mi}
service_connections: 6000
private_pipe_length_km: 0
average_pressure_m: {value: 4, unit: bar}
variable_production_cost: 3500
customer_retail_unit_cost: 7800
annual_operating_cost: 2.9e9
"""


def test_full_file_is_converted_to_internal_units():
    inp = audit(FULL)
    days = 100
    assert inp.days == days
    a, b, imp = inp.sources
    assert a.measured == pytest.approx(10_000.0) and a.value == pytest.approx(10_000.0 / 1.02)
    assert a.cl95 == pytest.approx(0.02) and a.grade == 7
    assert b.value == pytest.approx(500 * days)
    assert imp.imported and imp.value == pytest.approx(1_000.0)
    assert inp.water_exported.value == pytest.approx(500.0)
    assert inp.billed_unmetered.value == pytest.approx(300.0)
    assert inp.unbilled_metered.value == pytest.approx(100.0)
    # AWWA defaults of what a percentage applies to
    assert inp.unbilled_unmetered == Percent(1.25, "water_supplied")
    assert inp.unauthorized_consumption == Percent(0.25, "water_supplied", cl95=0.5, grade=3)
    cmi = inp.customer_meter_inaccuracies
    assert cmi.of == "metered_consumption" and cmi.under_registration and cmi.cl95 == pytest.approx(0.3)
    assert inp.systematic_data_handling_errors.value == pytest.approx(20.0)
    assert inp.mains_length_km == pytest.approx(100.0, rel=1e-6)  # 62.137119 mi
    assert inp.average_pressure_m == pytest.approx(4e5 / (1000 * 9.80665))  # 40.79 m
    assert inp.annual_operating_cost == pytest.approx(2.9e9)  # YAML 1.1 reads 2.9e9 as text
    assert inp.country_group == "developed" and inp.currency == "IDR"
    wb = water_balance(inp)
    assert wb["system_input_volume"].value == pytest.approx(10_000 / 1.02 + 50_000 + 1_000)


def test_minimal_file_and_single_source():
    inp = audit("system_input_volume: 100\nbilled_metered: 60\n")
    assert inp.days is None and len(inp.sources) == 1
    wb = water_balance(inp)
    assert wb["non_revenue_water"].value == 40.0


def test_inclusive_looking_period_end_is_remarked():
    inp = audit("period: {start: 2024-01-01, end: 2024-12-31}\nsystem_input_volume: 1\nbilled_metered: 1\n")
    assert inp.days == 365
    assert any("exclusive" in n for n in inp.notes)


# -- errors: each names the key and the line ---------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("system_input_volume: 1\nbilled_metred: 1\n", r"a.yaml, line 2: billed_metred: unknown key 'billed_metred'; did you mean 'billed_metered'\?"),
        ("system_input_volume: 1\nbilled_metered: {value: 1, cl95: two}\n", r"line 2: billed_metered.cl95: must be a number, got 'two'"),
        ("system_input_volume: 1\nbilled_metered:\n  value: 1\n  grade: 11\n", r"line 4: billed_metered.grade: must be ≤ 10, got 11"),
        ("system_input_volume: 1\nbilled_metered: {value: 1, grade: 7.5}\n", r"line 2: billed_metered.grade: must be a whole number"),
        ("system_input_volume: 1\nbilled_metered: {value: 1, unit: furlongs}\n", r"line 2: billed_metered.unit: unknown volume unit 'furlongs'"),
        ("system_input_volume: 1\nbilled_metered: -5\n", r"line 2: billed_metered: must be ≥ 0, got -5"),
        ("system_input_volume: 1\n", r"a.yaml: missing billed_metered"),
        ("billed_metered: 1\n", r"a.yaml: missing system_input_volume"),
        ("system_input_volume: {value: 5, unit: m3/day}\nbilled_metered: 1\n", r"line 1: system_input_volume.value: unit 'm3/day' is a rate"),
        (
            "period: {start: 2024-05-01, end: 2024-01-01}\nsystem_input_volume: 1\nbilled_metered: 1\n",
            r"line 1: period.end: must be after start",
        ),
        ("period: {start: yesterday, end: 2024-01-01}\nsystem_input_volume: 1\nbilled_metered: 1\n", r"period.start: not a date"),
        ("system_input_volume: 1\nbilled_metered: 1\nwater_exported: {pct: 3}\n", r"line 3: water_exported.pct: unknown key 'pct'"),
        ("system_input_volume: 1\nbilled_metered: 1\nunauthorized_consumption: {pct: 1, of: nothing}\n", r"unauthorized_consumption.of: must be one of"),
        ("system_input_volume: 1\nbilled_metered: 1\ncustomer_meter_inaccuracies: {pct: 100}\n", r"customer_meter_inaccuracies.pct: must be ≤ 99.99"),
        ("system_input_volume: 1\nbilled_metered: 1\ncountry_group: rich\n", r"line 3: country_group: must be 'developing' or 'developed'"),
        ("system_input_volume: 1\nbilled_metered: 1\naverage_pressure_m: {value: 3, unit: atm}\n", r"line 3: average_pressure_m.unit: unknown pressure unit 'atm'"),
        ("system_input_volume:\n  - {name: A, value: 1, imported: maybe}\nbilled_metered: 1\n", r"line 2: system_input_volume\[0\].imported: must be true or false"),
        ("system_input_volume: 1\nbilled_metered: store\n", r"line 2: billed_metered: takes its value from the store"),
        ("- just\n- a list\n", r"a.yaml: an audit file is a mapping"),
    ],
)
def test_errors_name_key_and_line(text, expected):
    with pytest.raises(AuditError, match=expected):
        audit(text)


def test_yaml_syntax_error_gives_line_and_column():
    with pytest.raises(AuditError, match=r"a.yaml, line 3, column \d+: not valid YAML"):
        audit("system_input_volume: 1\nbilled_metered: {value: 1\nname: x\n")


def test_missing_file(tmp_path):
    with pytest.raises(AuditError, match="cannot read the audit file"):
        load_audit(tmp_path / "nope.yaml")


def test_example_audit_in_docs_loads():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "nrw-audit-example.yaml"
    wb = water_balance(load_audit(path))
    assert 0 < wb["real_losses"].value < wb["system_input_volume"].value
    assert wb.bands and wb.validity_score is not None

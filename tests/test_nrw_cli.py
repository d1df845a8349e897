"""`tirtasu nrw …` on the command line: output formats, errors, help."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from test_nrw_store import fill_small_utility
from tirtasu.cli.nrw import app
from tirtasu.store import open_store

runner = CliRunner()

AUDIT = """\
name: Test zone
period: {start: 2024-01-01, end: 2025-01-01}
units: m3
system_input_volume: {value: 1000000, cl95: 2, grade: 7}
billed_metered: {value: 600000, cl95: 1, grade: 8}
unauthorized_consumption: {pct: 1, cl95: 50}
mains_length_km: 200
service_connections: 20000
average_pressure_m: 40
variable_production_cost: 0.4
customer_retail_unit_cost: 1.1
"""


@pytest.fixture
def audit_file(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text(AUDIT)
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def test_help_everywhere():
    for cmd in ([], ["balance"], ["dma"], ["trajectory"], ["eif"]):
        r = run(*cmd, "--help")
        assert r.exit_code == 0, cmd
        assert "Usage" in r.output


def test_balance_table(audit_file):
    r = run("balance", audit_file)
    assert r.exit_code == 0, r.output
    assert "Non-revenue water" in r.output and "Real losses (CARL)" in r.output
    assert "WBI band, developing countries" in r.output


def test_balance_json_has_value_cl_and_unit_for_every_component(audit_file):
    r = run("balance", audit_file, "--json", "--monte-carlo", 2000)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    nrw = d["components"]["non_revenue_water"]
    # NRW = 1,000,000 − 600,000 = 400,000 m³ ± 1.96·√((20,000/1.96)² + (6,000/1.96)²) = ±20,881 m³
    assert nrw["value"] == pytest.approx(400_000)
    assert nrw["cl95_abs"] == pytest.approx((20_000**2 + 6_000**2) ** 0.5)
    assert nrw["unit"] == "m3"
    for comp in d["components"].values():
        assert {"value", "cl95_pct", "cl95_abs", "unit"} <= set(comp)
    # UARL = (18·200 + 0.8·20,000)·40 L/d = 784 m³/d → 286,944 m³ over 2024 (a leap year: 366 days)
    assert d["indicators"]["uarl"]["value"] == pytest.approx((18 * 200 + 0.8 * 20_000) * 40 * 366 / 1000)
    assert d["period"]["days"] == 366
    assert d["monte_carlo"]["n"] == 2000
    assert d["wbi_bands"]["developing"]["source"]


def test_balance_html_is_self_contained(audit_file, tmp_path):
    out = tmp_path / "report.html"
    r = run("balance", audit_file, "--html", out, "--unit", "ML")
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "Non-revenue water" in html
    # nothing fetched: no scripts, no external references
    assert "<script" not in html and not re.search(r"(src|href)=\"https?://", html)
    assert "volumes in ML" in html


def test_balance_errors_name_key_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("system_input_volume: 1\nbilled_metered: {value: 1, grade: 12}\n")
    r = run("balance", bad)
    assert r.exit_code == 1
    assert "line 2" in r.output and "billed_metered.grade" in r.output
    assert "Traceback" not in r.output
    r = run("balance", tmp_path / "missing.yaml")
    assert r.exit_code == 1 and "cannot read" in r.output
    r = run("balance", bad, "--unit", "parsecs")
    assert r.exit_code == 1 and "unknown volume unit" in r.output


def test_balance_from_store_needs_a_store(tmp_path):
    audit = tmp_path / "a.yaml"
    audit.write_text("period: {start: 2024-01-01, end: 2024-01-03}\nsystem_input_volume: store\nbilled_metered: 1\n")
    r = run("balance", audit, "--store", tmp_path / "none.duckdb")
    assert r.exit_code == 1 and "no store at" in r.output


@pytest.fixture
def store_file(tmp_path):
    path = tmp_path / "s.duckdb"
    st = open_store(path)
    fill_small_utility(st)
    st.close()
    return path


def test_balance_with_volumes_from_the_store(tmp_path, store_file):
    audit = tmp_path / "a.yaml"
    audit.write_text("dma: B\nperiod: {start: 2024-01-01, end: 2024-01-03}\nsystem_input_volume: store\nbilled_metered: store\n")
    r = run("balance", audit, "--store", store_file, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["components"]["system_input_volume"]["value"] == pytest.approx(480.0)


def test_dma_command(store_file):
    r = run("dma", "--store", store_file, "--from", "2024-01-01", "--to", "2024-01-03",
            "--household-night-use", 0, "--non-household-night-use", 0, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    by = {x["dma"]: x for x in d["dmas"]}
    assert by["B"]["real_losses_m3d"] == pytest.approx(240.0)  # 10 m³/h all night and day
    assert [x["dma"] for x in d["ranking"]] == ["A", "B"]  # A: 12.15 m³/h after its tank
    r = run("dma", "--store", store_file, "--from", "2024-01-01", "--to", "2024-01-03")
    assert r.exit_code == 0 and "DMA night-flow analysis" in r.output
    # defaults: the last 28 days before the last reading
    assert run("dma", "--store", store_file).exit_code == 0


def test_dma_command_errors(store_file, tmp_path):
    assert "no store at" in run("dma", "--store", tmp_path / "x.duckdb").output
    assert run("dma", "--store", store_file, "--n1", 2).exit_code == 2  # outside 0.5–1.5: refused by the option
    r = run("dma", "--store", store_file, "--from", "2024-01-03", "--to", "2024-01-01")
    assert r.exit_code == 1 and "--to must be after --from" in r.output
    r = run("dma", "--store", store_file, "--reference-from", "2024-01-01")
    assert r.exit_code == 1 and "both" in r.output
    r = run("dma", "--store", store_file, "--dma", "nowhere", "--from", "2024-01-01", "--to", "2024-01-03")
    assert r.exit_code == 1 and "no boundary links for DMA 'nowhere'" in r.output
    r = run("dma", "--store", store_file, "--night", "late")
    assert r.exit_code == 1 and "--night" in r.output


def test_trajectory_command():
    r = run("trajectory", "--from-pct", 46, "--to-pct", 30, "--start-year", 2025, "--target-year", 2030, "--json")
    assert r.exit_code == 0
    years = json.loads(r.output)["years"]
    assert [y["year"] for y in years] == list(range(2025, 2031))
    assert years[-1]["nrw_pct"] == pytest.approx(30.0) and years[1]["nrw_pct"] == pytest.approx(42.8)
    r = run("trajectory", "--from-pct", 46, "--to-pct", 30, "--start-year", 2030, "--target-year", 2025)
    assert r.exit_code == 1 and "after start year" in r.output


def test_eif_command():
    r = run("eif", "--survey-cost", 2000, "--variable-cost", 0.5, "--rate-of-rise", 0.5, "--json")
    assert r.exit_code == 0
    assert json.loads(r.output)["eif_months"] == pytest.approx((0.789041 * 4000 / 0.5) ** 0.5, rel=1e-5)
    assert run("eif", "--survey-cost", 0, "--variable-cost", 0.5, "--rate-of-rise", 0.5).exit_code == 1

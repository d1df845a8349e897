"""Network models: loading, summary, DMAs, hydraulics in our units, GeoJSON, bad models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import wntr
from typer.testing import CliRunner

from tirtasu.cli import app
from tirtasu.network import (
    ModelError,
    dma_report,
    dmas_from_boundaries,
    dmas_from_table,
    load_model,
    network_geojson,
    read_dma_csv,
    run_hydraulics,
    summarize,
)

GPM_TO_M3H = 3.785411784e-3 * 60  # US gallon [m³] × 60 min/h


def _section(path, name):
    """Data lines of an .inp section, read without WNTR (an independent reading)."""
    rows, inside = [], False
    for line in open(path):
        s = line.split(";")[0].strip()
        if s.startswith("["):
            inside = s.upper() == f"[{name}]"
            continue
        if inside and s:
            rows.append(s.split())
    return rows


def test_ltown_summary_matches_battledim_and_file(ltown_path):
    s = summarize(load_model(ltown_path))
    # BattLeDIM 2020 L-Town: 782 junctions, 905 pipes (REFERENCES.md)
    assert (s.junctions, s.pipes, s.tanks, s.reservoirs, s.pumps, s.valves) == (782, 905, 1, 2, 1, 3)
    assert s.flow_units == "CMH"
    pipe_m = sum(float(r[3]) for r in _section(ltown_path, "PIPES"))
    assert s.mains_km == pytest.approx(pipe_m / 1000, rel=1e-9)
    base = sum(float(r[1]) for r in _section(ltown_path, "DEMANDS"))  # CMH in the file
    assert s.base_demand_m3h == pytest.approx(base, rel=1e-6)


def test_model_in_gpm_is_converted_to_m3h(net1_path):
    s = summarize(load_model(net1_path))
    assert s.flow_units == "GPM"
    # Net1's junction demands add up to 1100 GPM
    assert s.base_demand_m3h == pytest.approx(1100 * GPM_TO_M3H, rel=1e-6)


def test_hydraulics_in_our_units_conserve_mass(net1_path):
    wn = load_model(net1_path)
    res = run_hydraulics(wn, duration_h=6, start="2025-01-01")
    assert str(res.flow.index.tz) == "UTC"
    # continuity at each junction: inflow − outflow = demand [m³/h]
    for name, junction in wn.junctions():
        net = sum(res.flow[l] for l in wn.get_links_for_node(name, "INLET")) - sum(
            res.flow[l] for l in wn.get_links_for_node(name, "OUTLET")
        )
        np.testing.assert_allclose(net, res.demand[name], atol=1e-3)
    # at t=0 the demand of junction 11 is 150 GPM × pattern 1 (first multiplier 1.0)
    assert res.demand["11"].iloc[0] == pytest.approx(150 * GPM_TO_M3H, rel=1e-4)
    # pressure head = head − elevation (710 ft) in metres
    np.testing.assert_allclose(res.pressure["11"], res.head["11"] - 710 * 0.3048, atol=1e-3)


def _two_zone_network():
    """Two loops joined by pipe M (the meter) and a closed pipe X; reservoir R feeds zone A."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=60, coordinates=(0, 0))
    for i, (x, y) in enumerate([(1, 0), (2, 0), (2, 1), (1, 1), (3, 0), (4, 0), (4, 1), (3, 1)], start=1):
        wn.add_junction(f"J{i}", base_demand=0.001, elevation=10, coordinates=(x, y))
    wn.add_pipe("S", "R", "J1", length=100, diameter=0.3, roughness=120)
    for name, a, b in [("A1", "J1", "J2"), ("A2", "J2", "J3"), ("A3", "J3", "J4"), ("A4", "J4", "J1")]:
        wn.add_pipe(name, a, b, length=200, diameter=0.2, roughness=120)
    for name, a, b in [("B1", "J5", "J6"), ("B2", "J6", "J7"), ("B3", "J7", "J8"), ("B4", "J8", "J5")]:
        wn.add_pipe(name, a, b, length=300, diameter=0.2, roughness=120)
    wn.add_pipe("M", "J2", "J5", length=50, diameter=0.2, roughness=120)
    wn.add_pipe("X", "J8", "J3", length=60, diameter=0.2, roughness=120, initial_status="CLOSED")
    return wn


def test_dmas_by_cutting_at_meters_and_closed_valves():
    wn = _two_zone_network()
    dmas = dmas_from_boundaries(wn, ["S", "M"])
    assert dmas.names == ["DMA-1", "DMA-2"]
    zone = dmas.node_dma()
    assert {zone[f"J{i}"] for i in range(1, 5)} == {zone["J1"]} and {zone[f"J{i}"] for i in range(5, 9)} == {zone["J5"]}
    assert zone["J1"] != zone["J5"] and "R" not in zone  # a reservoir alone is a source, not a DMA
    links = dmas.links.set_index(["dma", "link_id"])
    a, b = zone["J1"], zone["J5"]
    assert links.loc[(a, "S"), "sign"] == 1  # R → J1 enters zone A
    assert links.loc[(a, "M"), "sign"] == -1 and links.loc[(b, "M"), "sign"] == 1
    assert bool(links.loc[(b, "X"), "closed"])
    flows = run_hydraulics(wn, duration_h=1).flow
    report = dma_report(wn, dmas, flows).set_index("dma")
    assert report.loc[a, "inflow_links"] == "S" and report.loc[a, "outflow_links"] == "M"
    assert report.loc[b, "inflow_links"] == "M" and report.loc[b, "closed_links"] == "X"
    # mains: 4×200 m + half of M (50) + half of X (60) in A, 4×300 + halves in B; S half (R is no DMA)
    assert report.loc[a, "mains_km"] == pytest.approx((800 + 25 + 30 + 50) / 1000)
    assert report.loc[b, "mains_km"] == pytest.approx((1200 + 25 + 30) / 1000)


def test_dmas_from_csv_and_its_errors(tmp_path):
    wn = _two_zone_network()
    path = tmp_path / "dma.csv"
    path.write_text("node_id,dma\n" + "".join(f"J{i},North\n" for i in range(1, 5)) + "".join(f"J{i},South\n" for i in range(5, 9)))
    dmas = dmas_from_table(wn, read_dma_csv(path))
    assert dmas.names == ["North", "South"]
    assert set(dmas.links.link_id) == {"S", "M", "X"}
    path.write_text("node_id,dma\nJ1,North\nJ1,South\n")
    with pytest.raises(ValueError, match=r"dma.csv:3: node 'J1' already assigned"):
        read_dma_csv(path)
    path.write_text("node,zone\nJ1,North\n")
    with pytest.raises(ValueError, match=r":1: expected columns node_id,dma"):
        read_dma_csv(path)
    with pytest.raises(KeyError, match="not in the model: J99"):
        dmas_from_table(wn, pd.DataFrame({"node_id": ["J99"], "dma": ["N"]}))
    with pytest.raises(KeyError, match="boundary link"):
        dmas_from_boundaries(wn, ["nope"])


def test_ltown_pilot_dmas(ltown_path):
    wn = load_model(ltown_path)
    dmas = dmas_from_boundaries(wn, ["p227", "p235", "PUMP_1", "PRV-3"])
    report = dma_report(wn, dmas, run_hydraulics(wn, duration_h=24).flow).set_index("dma")
    assert len(report) == 3
    assert report["nodes"].sum() == 782 + 1  # every junction and the tank; reservoirs are sources
    assert report.loc["DMA-1", "inflow_links"] == "p227, p235"
    assert report.loc["DMA-2", "tanks"] == "T1" and report.loc["DMA-2", "inflow_links"] == "PUMP_1"
    total_km = sum(p.length for _, p in wn.pipes()) / 1000
    # p227 and p235 leave the reservoirs: half their length lies outside every DMA
    outside = (wn.get_link("p227").length + wn.get_link("p235").length) / 2000
    assert report["mains_km"].sum() == pytest.approx(total_km - outside, rel=1e-6)


def _bad_model(tmp_path, net1_path, after, line):
    text = open(net1_path).read().replace(after, after + "\n" + line, 1)
    path = tmp_path / "bad.inp"
    path.write_text(text)
    line_no = text.splitlines().index(line) + 1
    return path, line_no


def test_malformed_models_name_the_line(tmp_path, net1_path):
    path, n = _bad_model(tmp_path, net1_path, "[PIPES]", " 999  10  11  abc  14  100  0  Open")
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert err.value.line == n and f"bad.inp:{n}" in str(err.value) and "abc" in str(err.value)

    path, n = _bad_model(tmp_path, net1_path, "[PIPES]", " 998  10  XX  100  14  100  0  Open")
    with pytest.raises(ModelError, match="XX") as err:
        load_model(path)
    assert err.value.line == n

    (tmp_path / "junk.inp").write_text("this is not a model\n")
    with pytest.raises(ModelError, match=":1:"):
        load_model(tmp_path / "junk.inp")
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "missing.inp")


def test_geojson_keeps_model_coordinates_and_says_the_crs(ltown_path):
    wn = load_model(ltown_path)
    dmas = dmas_from_boundaries(wn, ["p227", "p235", "PUMP_1", "PRV-3"])
    gj = network_geojson(wn, dmas)
    assert len(gj["features"]) == wn.num_nodes + wn.num_links + 3  # and one per DMA
    dma3 = next(f for f in gj["features"] if f["id"] == "dma:DMA-3")
    inside = [n for n, l in wn.links() if dmas.node_dma().get(l.start_node_name) == dmas.node_dma().get(l.end_node_name) == "DMA-3"]
    assert len(dma3["geometry"]["coordinates"]) == len(inside)
    assert gj["properties"]["crs"] is None and "unknown" in gj["properties"]["crs_source"]
    n1 = next(f for f in gj["features"] if f["id"] == "n1")
    assert n1["geometry"]["coordinates"] == list(wn.get_node("n1").coordinates)
    assert n1["properties"]["dma"] == dmas.node_dma()["n1"]
    p227 = next(f for f in gj["features"] if f["id"] == "p227")
    assert p227["properties"]["boundary"] is True
    assert len(network_geojson(wn)["features"]) == wn.num_nodes + wn.num_links
    assert network_geojson(wn, crs="EPSG:32748")["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32748"


def test_geojson_infers_lonlat():
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50, coordinates=(106.82, -6.17))  # Jakarta
    wn.add_junction("J", coordinates=(106.83, -6.18))
    wn.add_pipe("P", "R", "J")
    gj = network_geojson(wn)
    assert gj["properties"]["crs"] == "EPSG:4326"
    json.dumps(gj)


def test_network_cli(ltown_path, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["network", "info", str(ltown_path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["junctions"] == 782
    r = runner.invoke(app, ["network", "dmas", str(ltown_path), "-b", "p227,p235", "-b", "PUMP_1,PRV-3", "--out", str(tmp_path / "d.csv")])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "d.csv")) == 783
    r = runner.invoke(app, ["network", "geojson", str(ltown_path), "--out", str(tmp_path / "n.geojson")])
    assert r.exit_code == 0 and json.loads((tmp_path / "n.geojson").read_text())["type"] == "FeatureCollection"
    r = runner.invoke(app, ["network", "run", str(ltown_path), "--hours", "1", "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "pressures.csv").shape == (13, 1 + 785)
    r = runner.invoke(app, ["network", "info", str(tmp_path / "nope.inp")])
    assert r.exit_code == 1 and "no such model file" in r.output
    r = runner.invoke(app, ["network", "import", str(ltown_path), "-b", "p227,p235,PUMP_1,PRV-3", "--store", str(tmp_path / "s.duckdb")])
    assert r.exit_code == 0, r.output

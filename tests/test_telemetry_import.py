"""Import of SCADA/AMR exports: wide and long CSV, Parquet, validation, atomicity, idempotence."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tirtasu.cli.telemetry import app as telemetry_app
from tirtasu.store import open_store
from tirtasu.telemetry.importer import (
    ImportRejectedError,
    TelemetryImportError,
    import_file,
    infer_kind,
    split_unit,
)
from tirtasu.telemetry.timestamps import parse_timestamps

NOW = pd.Timestamp("2024-06-01 00:00", tz="UTC")  # "now" for every import: future checks are reproducible
PSI = 0.7030696  # m per psi
BAR = 10.197162  # m per bar

REGISTRY = pd.DataFrame(
    [
        {"sensor_id": "P_n1", "kind": "pressure", "node_id": "n1", "dma": "A"},
        {"sensor_id": "P_n2", "kind": "pressure", "node_id": "n2", "dma": "A"},
        {"sensor_id": "Q_p1", "kind": "flow", "link_id": "p1", "dma": "A"},
        {"sensor_id": "D_n1", "kind": "demand", "node_id": "n1", "dma": "A"},
        {"sensor_id": "L_t1", "kind": "level", "node_id": "t1"},
    ]
)


@pytest.fixture
def store(store):
    """The shared store fixture (each backend) with the test registry."""
    store.upsert_sensors(REGISTRY)
    return store


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def stored(store) -> pd.DataFrame:
    return store.readings()


def value_at(store, sensor_id: str, time: str) -> float:
    df = store.readings(sensor_ids=[sensor_id])
    hit = df[df["time"] == pd.Timestamp(time, tz="UTC")]
    assert len(hit) == 1, f"no single reading of {sensor_id} at {time}: {df}"
    return float(hit["value"].iloc[0])


def imp(store, path, **kw):
    kw.setdefault("now", NOW)
    return import_file(store, path, **kw)


def rejection(report, line: int) -> pd.Series:
    rows = report.rejections[report.rejections["line"] == line]
    assert len(rows) == 1, f"expected one rejection on line {line}:\n{report.rejections}"
    return rows.iloc[0]


WIDE = """timestamp,n1,P_n2
2024-01-01 00:00,50.0,40.0
2024-01-01 00:05,50.5,40.5
2024-01-01 00:10:00,51.0,41.0
"""


# -- wide files -------------------------------------------------------------------------------------
def test_wide_import_end_to_end(store, tmp_path):
    path = write(tmp_path, "pressures.csv", WIDE)
    report = imp(store, path)

    assert (report.kind, report.layout) == ("pressure", "wide")
    assert report.rows_read == 3 and report.sensors == 2
    assert (report.added, report.unchanged, report.rejected, report.gaps) == (6, 0, 0, 0)
    assert report.stored and report.rejections.empty and report.warnings == []
    assert report.first_time == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert report.last_time == pd.Timestamp("2024-01-01 00:10", tz="UTC")

    df = stored(store)
    assert len(df) == 6
    assert str(df["time"].dt.tz) == "UTC"
    assert value_at(store, "P_n1", "2024-01-01 00:05") == 50.5  # column "n1" → node n1's sensor
    assert value_at(store, "P_n2", "2024-01-01 00:10") == 41.0  # column "P_n2" → sensor id

    log = store.imports()
    assert len(log) == 1
    assert log["checksum"].iloc[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(log["report"].iloc[0])["added"] == 6


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("pressures.csv", "pressure"),
        ("flows.csv", "flow"),
        ("levels.csv", "level"),
        ("demands.csv", "demand"),
        ("2018_SCADA_Pressures.csv", "pressure"),
        ("Flows-2024-03.csv.gz", "flow"),
        ("export.csv", None),
        ("pressures_and_flows.csv", None),
    ],
)
def test_kind_from_file_name(name, kind):
    assert infer_kind(name) == kind


def test_split_unit_from_header():
    assert split_unit("n54 [bar]") == ("n54", "bar")
    assert split_unit("n54 (bar)") == ("n54", "bar")
    assert split_unit(" n54 ") == ("n54", None)
    assert split_unit("Flow (m³/h)") == ("Flow", "m³/h")


def test_flows_and_demands_kinds(store, tmp_path):
    imp(store, write(tmp_path, "flows.csv", "timestamp,p1\n2024-01-01 00:00,-12.5\n"))
    imp(store, write(tmp_path, "demands.csv", "timestamp,n1\n2024-01-01 00:00,120\n"))
    assert value_at(store, "Q_p1", "2024-01-01") == -12.5  # a pipe flow may be negative (direction)
    assert value_at(store, "D_n1", "2024-01-01") == 120.0


def test_explicit_kind_for_a_file_named_otherwise(store, tmp_path):
    path = write(tmp_path, "scada_export_march.csv", "timestamp,p1\n2024-03-01 00:00,3\n")
    with pytest.raises(TelemetryImportError, match="cannot tell which kind"):
        imp(store, path)
    report = imp(store, path, kind="flow")
    assert report.added == 1 and value_at(store, "Q_p1", "2024-03-01") == 3.0


def test_file_named_by_sensor_ids_needs_no_kind(store, tmp_path):
    path = write(tmp_path, "export.csv", "timestamp,P_n1,Q_p1\n2024-03-01 00:00,45,3\n")
    report = imp(store, path)
    assert report.added == 2 and report.kind is None


def test_reimport_adds_nothing(store, tmp_path):
    path = write(tmp_path, "pressures.csv", WIDE)
    first = imp(store, path)
    again = imp(store, path)
    assert first.added == 6
    assert (again.added, again.unchanged, again.rejected) == (0, 6, 0)
    assert len(stored(store)) == 6
    assert any("imported before" in w for w in again.warnings)


def test_conflicting_reimport_is_reported_and_stored_value_kept(store, tmp_path):
    imp(store, write(tmp_path, "pressures.csv", WIDE))
    changed = WIDE.replace("2024-01-01 00:05,50.5,40.5", "2024-01-01 00:05,52.5,40.5")
    report = imp(store, write(tmp_path, "pressures.csv", changed))
    assert (report.added, report.unchanged, report.rejected) == (0, 5, 1)
    row = rejection(report, 3)
    assert row["column"] == "n1" and row["value"] == "52.5"
    assert "already stored as 50.5 m" in row["reason"]
    assert value_at(store, "P_n1", "2024-01-01 00:05") == 50.5
    assert len(stored(store)) == 6


def test_unknown_columns_refuse_the_file(store, tmp_path):
    path = write(tmp_path, "pressures.csv", "timestamp,n1,n99,typo_n2\n2024-01-01 00:00,1,2,3\n")
    with pytest.raises(TelemetryImportError) as err:
        imp(store, path)
    message = str(err.value)
    assert "n99" in message and "typo_n2" in message and "Nothing was stored" in message
    assert "n1," not in message
    assert stored(store).empty and store.imports().empty


def test_column_naming_a_sensor_of_another_kind_is_refused(store, tmp_path):
    path = write(tmp_path, "pressures.csv", "timestamp,Q_p1\n2024-01-01 00:00,1\n")
    with pytest.raises(TelemetryImportError, match="Q_p1 is a flow sensor"):
        imp(store, path)


def test_auto_register_sensors_on_model_nodes(store, tmp_path):
    network = {"nodes": ["n1", "n2", "n54"], "links": ["p1", "p7"]}
    report = imp(
        store,
        write(tmp_path, "pressures.csv", "timestamp,n1,n54\n2024-01-01 00:00,50,47\n"),
        register=True,
        network=network,
    )
    assert report.registered == ["P_n54"] and report.added == 2
    new = store.sensors().set_index("sensor_id").loc["P_n54"]
    assert (new["kind"], new["node_id"], new["link_id"]) == ("pressure", "n54", None)
    report = imp(
        store, write(tmp_path, "flows.csv", "timestamp,p7\n2024-01-01 00:00,9\n"), register=True, network=network
    )
    assert report.registered == ["Q_p7"]
    assert store.sensors().set_index("sensor_id").loc["Q_p7", "link_id"] == "p7"
    # a column that is not a node of the model is still refused, and nothing is registered
    with pytest.raises(TelemetryImportError, match="n77"):
        imp(
            store,
            write(tmp_path, "levels.csv", "timestamp,t1,n77\n2024-01-01 00:00,3,4\n"),
            register=True,
            network=network,
        )
    assert "L_n77" not in set(store.sensors()["sensor_id"])


def test_units_in_header_and_for_the_file(store, tmp_path):
    text = "timestamp,n1 [bar],n2 (psi)\n2024-01-01 00:00,5,10\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 2
    assert value_at(store, "P_n1", "2024-01-01") == pytest.approx(5 * BAR, rel=1e-6)
    assert value_at(store, "P_n2", "2024-01-01") == pytest.approx(10 * PSI, rel=1e-6)
    imp(store, write(tmp_path, "flows.csv", "timestamp,p1\n2024-01-01 00:00,10\n"), unit="L/s")
    assert value_at(store, "Q_p1", "2024-01-01") == pytest.approx(36.0)


def test_registered_unit_applies_when_the_file_says_none(store, tmp_path):
    store.upsert_sensors(pd.DataFrame([{"sensor_id": "P_n2", "kind": "pressure", "unit": "bar", "node_id": "n2"}]))
    imp(store, write(tmp_path, "pressures.csv", "timestamp,n2\n2024-01-01 00:00,4\n"))
    assert value_at(store, "P_n2", "2024-01-01") == pytest.approx(4 * BAR, rel=1e-6)


@pytest.mark.parametrize(
    ("header", "options", "expected"),
    [
        ("timestamp,n1 [psx]", {}, "unknown pressure unit 'psx'"),
        ("timestamp,n1", {"unit": "gallons"}, "unknown pressure unit 'gallons'"),
        ("timestamp,n1 [L/s]", {}, "unknown pressure unit 'L/s'"),
        ("timestamp,n1 [bar]", {"unit": "psi"}, "drop one of them"),
    ],
)
def test_unknown_or_contradictory_unit_refuses_the_file(store, tmp_path, header, options, expected):
    path = write(tmp_path, "pressures.csv", header + "\n2024-01-01 00:00,1\n")
    with pytest.raises(TelemetryImportError, match=expected):
        imp(store, path, **options)
    assert stored(store).empty


def test_non_numeric_value_is_reported_where_it_is_and_the_rest_stored(store, tmp_path):
    text = WIDE.replace("2024-01-01 00:05,50.5,40.5", "2024-01-01 00:05,50.5,err#3")
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert (report.added, report.rejected) == (5, 1)
    row = rejection(report, 3)
    assert (row["column"], row["value"], row["reason"]) == ("P_n2", "err#3", "not a number")
    assert len(stored(store)) == 5
    assert value_at(store, "P_n2", "2024-01-01 00:10") == 41.0


@pytest.mark.parametrize("bad", ["NaN", "nan", "inf", "-Infinity", "1e999"])
def test_nan_and_infinite_values_are_rejected(store, tmp_path, bad):
    text = WIDE.replace("50.5", bad)
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert (report.added, report.rejected) == (5, 1)
    row = rejection(report, 3)
    assert row["column"] == "n1"
    assert ("NaN" in row["reason"]) if "nan" in bad.lower() else ("infinite" in row["reason"])


def test_empty_cells_are_gaps_not_rejections(store, tmp_path):
    text = "timestamp,n1,n2\n2024-01-01 00:00,,40\n2024-01-01 00:05,50,  \n2024-01-01 00:10,51,41\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert (report.added, report.gaps, report.rejected) == (4, 2, 0)


def test_implausible_values_are_rejected(store, tmp_path):
    text = "timestamp,n1,n2\n2024-01-01 00:00,-25,1500\n2024-01-01 00:05,-3,120\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 2  # -3 m (slight vacuum) and 120 m are possible
    assert set(report.rejections["value"]) == {"-25.0", "1500.0"}
    assert report.rejections["reason"].str.contains("implausible pressure").all()
    report = imp(store, write(tmp_path, "demands.csv", "timestamp,n1\n2024-01-01 00:00,-5\n"))
    assert report.rejected == 1 and "implausible demand" in report.rejections["reason"].iloc[0]


def test_implausible_bounds_apply_after_unit_conversion(store, tmp_path):
    # 120 bar = 1224 m: beyond any pipe rating, though "120" alone would look fine in metres
    report = imp(
        store, write(tmp_path, "pressures.csv", "timestamp,n1 [bar]\n2024-01-01 00:00,120\n2024-01-01 00:05,6\n")
    )
    assert (report.added, report.rejected) == (1, 1)
    assert rejection(report, 2)["value"] == "120.0"


def test_duplicate_timestamps(store, tmp_path):
    text = (
        "timestamp,n1,n2\n"
        "2024-01-01 00:00,50,40\n"
        "2024-01-01 00:05,51,41\n"
        "2024-01-01 00:05,51,42\n"  # n1 repeated with the same value, n2 with another
        "2024-01-01 00:10,52,43\n"
    )
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.collapsed == 1
    assert any("kept once" in w and "4" in w for w in report.warnings)
    conflicting = report.rejections[report.rejections["column"] == "n2"]
    assert list(conflicting["line"]) == [3, 4]
    assert conflicting["reason"].str.contains("repeated on line").all()
    assert value_at(store, "P_n1", "2024-01-01 00:05") == 51.0
    assert store.readings(sensor_ids=["P_n2"], start="2024-01-01 00:05", end="2024-01-01 00:06").empty
    assert (report.added, report.rejected) == (5, 2)


def test_out_of_order_rows_are_accepted_sorted_and_reported(store, tmp_path):
    text = "timestamp,n1\n2024-01-01 00:10,3\n2024-01-01 00:00,1\n2024-01-01 00:05,2\n2024-01-01 00:15,4\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 4 and report.rejected == 0
    warning = next(w for w in report.warnings if "out of time order" in w)
    assert "lines 3, 4" in warning
    assert list(stored(store)["value"]) == [1.0, 2.0, 3.0, 4.0]


def test_future_timestamps_are_rejected(store, tmp_path):
    text = "timestamp,n1,n2\n2024-05-31 23:00,1,2\n2024-06-01 00:30,3,4\n2024-06-01 02:00,5,6\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))  # now = 2024-06-01 00:00 UTC
    assert report.added == 4  # 00:30 is within the 1 h tolerance
    row = rejection(report, 4)
    assert row["column"] == "timestamp" and "future" in row["reason"]
    assert report.rejected == 2  # both readings of the row
    report = imp(store, write(tmp_path, "pressures.csv", text), future_tolerance="3h")
    assert report.added == 2 and report.rejected == 0


def test_unreadable_and_missing_timestamps_are_rejected(store, tmp_path):
    text = "timestamp,n1\n2024-01-01 00:00,1\nyesterday,2\n,3\n2024-02-30 00:00,4\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 1
    assert list(report.rejections["line"]) == [3, 4, 5]
    assert "unreadable timestamp" in rejection(report, 3)["reason"]
    assert rejection(report, 4)["reason"] == "missing timestamp"
    assert "unreadable timestamp" in rejection(report, 5)["reason"]  # 30 February


def test_no_readable_timestamp_refuses_the_file_with_a_hint(store, tmp_path):
    path = write(tmp_path, "pressures.csv", "timestamp,n1\n31/01/2024 07:00,1\n01/02/2024 07:00,2\n")
    with pytest.raises(TelemetryImportError, match="time-format"):
        imp(store, path)
    report = imp(store, path, time_format="%d/%m/%Y %H:%M", tz="Asia/Jakarta")
    assert report.added == 2 and value_at(store, "P_n1", "2024-01-31 00:00") == 1.0


def test_ragged_rows_are_rejected_with_their_line(store, tmp_path):
    text = "timestamp,n1,n2\n2024-01-01 00:00,1,2\n2024-01-01 00:05,3\n\n2024-01-01 00:10,5,6,7\n2024-01-01 00:15,x,8\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 3
    assert list(report.rejections["line"]) == [3, 5, 6]  # line 4 is blank, and skipped
    assert "2 field(s); the header has 3" in rejection(report, 3)["reason"]
    assert "4 field(s)" in rejection(report, 5)["reason"]
    assert rejection(report, 6)["column"] == "n1"  # line numbers after the blank line are right


def test_malformed_files_are_refused_whole(store, tmp_path):
    with pytest.raises(TelemetryImportError, match="no timestamp column"):
        imp(store, write(tmp_path, "pressures.csv", "n1,n2\n1,2\n"))
    with pytest.raises(TelemetryImportError, match="empty"):
        imp(store, write(tmp_path, "pressures.csv", ""))
    with pytest.raises(TelemetryImportError, match="no such file"):
        imp(store, tmp_path / "missing.csv")
    # decimal commas in a comma-separated file: no row has the header's fields
    with pytest.raises(TelemetryImportError, match="malformed CSV"):
        imp(store, write(tmp_path, "pressures.csv", "timestamp,n1\n2024-01-01 00:00,1,5\n2024-01-01 00:05,2,5\n"))
    assert stored(store).empty and store.imports().empty


def test_semicolons_and_decimal_commas(store, tmp_path):
    # the BattLeDIM / European spreadsheet convention
    text = "\ufeffTimestamp;n1;n2\n2018-01-01 00:00;50,25;40,5\n2018-01-01 00:05;50,5;40\n"
    report = imp(store, write(tmp_path, "2018_SCADA_Pressures.csv", text))
    assert report.added == 4
    assert value_at(store, "P_n1", "2018-01-01 00:00") == 50.25


def test_quoted_fields_keep_line_numbers_exact(store, tmp_path):
    text = 'timestamp,"n1",n2\n"2024-01-01 00:00","1",2\n"2024-01-01 00:05",bad,3\n'
    report = imp(store, write(tmp_path, "pressures.csv", text))
    assert report.added == 3 and rejection(report, 3)["column"] == "n1"


# -- time zones -------------------------------------------------------------------------------------
def test_naive_times_in_a_given_zone_are_stored_in_utc(store, tmp_path):
    path = write(tmp_path, "pressures.csv", "timestamp,n1\n2024-01-01 07:00,50\n")
    imp(store, path, tz="Asia/Jakarta")
    assert stored(store)["time"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_times_with_an_offset_are_respected_whatever_the_zone(store, tmp_path):
    text = "timestamp,n1\n2024-01-01T07:00:00+07:00,1\n2024-01-01T03:05:00+03:00,2\n2024-01-01T00:10:00Z,3\n"
    imp(store, write(tmp_path, "pressures.csv", text), tz="Europe/Istanbul")
    assert list(stored(store)["time"].dt.strftime("%H:%M")) == ["00:00", "00:05", "00:10"]


def test_zone_in_the_timestamp_header(store, tmp_path):
    imp(store, write(tmp_path, "pressures.csv", "timestamp (Asia/Jakarta),n1\n2024-01-01 07:00,50\n"))
    assert stored(store)["time"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    with pytest.raises(TelemetryImportError, match="drop one of them"):
        imp(
            store,
            write(tmp_path, "pressures.csv", "timestamp (Asia/Jakarta),n1\n2024-01-01 07:00,50\n"),
            tz="Europe/Istanbul",
        )


def test_unknown_time_zone_is_a_clear_error(store, tmp_path):
    with pytest.raises(TelemetryImportError, match="unknown time zone 'Asia/Jakrta'"):
        imp(store, write(tmp_path, "pressures.csv", WIDE), tz="Asia/Jakrta")


def test_daylight_saving_gaps_and_repeats_are_rejected(store, tmp_path):
    text = (
        "timestamp,n1\n"
        "2024-03-31 01:30,1\n"
        "2024-03-31 02:30,2\n"  # does not exist in Berlin: clocks jump from 02:00 to 03:00
        "2024-10-27 02:30,3\n"  # exists twice: clocks go back from 03:00 to 02:00
        "2024-10-27 03:30,4\n"
    )
    report = imp(store, write(tmp_path, "pressures.csv", text), tz="Europe/Berlin", now="2025-01-01")
    assert report.added == 2
    assert "does not exist" in rejection(report, 3)["reason"]
    assert "ambiguous" in rejection(report, 4)["reason"]
    assert list(stored(store)["time"]) == [
        pd.Timestamp("2024-03-31 00:30", tz="UTC"),
        pd.Timestamp("2024-10-27 02:30", tz="UTC"),
    ]


def test_parse_timestamps_forms():
    parsed = parse_timestamps(
        ["2024-01-01 07:00", "2024-01-01T07:00:00", "2024-01-01 07:00 UTC", "2024/01/01 07:00"], "UTC+7"
    )
    assert parsed.ok.all()
    hours = pd.to_datetime(parsed.utc_us, unit="us").hour
    assert list(hours) == [0, 0, 7, 0]


# -- long files -------------------------------------------------------------------------------------
LONG = """sensor_id,time,value,unit
P_n1,2024-01-01 07:00,50,m
P_n1,2024-01-01 07:05,5,bar
Q_p1,2024-01-01 07:00,10,L/s
Q_p1,2024-01-01 07:05,11,furlongs/fortnight
Q_p1,2024-01-01 07:10,,
D_n1,2024-01-01 07:00,0.05,m3/h
"""


def test_long_csv_with_units_per_row(store, tmp_path):
    report = imp(store, write(tmp_path, "readings.csv", LONG), tz="Asia/Jakarta")
    assert report.layout == "long" and report.kind is None
    assert (report.added, report.rejected, report.gaps) == (4, 1, 1)
    row = rejection(report, 5)
    assert (row["column"], row["value"]) == ("unit", "furlongs/fortnight")
    assert "unknown flow unit" in row["reason"]
    assert value_at(store, "P_n1", "2024-01-01 00:05") == pytest.approx(5 * BAR, rel=1e-6)
    assert value_at(store, "Q_p1", "2024-01-01 00:00") == pytest.approx(36.0)
    assert value_at(store, "D_n1", "2024-01-01 00:00") == pytest.approx(50.0)  # m³/h → L/h


def test_long_csv_timestamp_column_and_problems(store, tmp_path):
    text = (
        "Sensor_ID,Timestamp,Value\n"
        "P_n1,2024-01-01 00:00,50\n"
        "P_n1,2024-01-01 00:00,50\n"  # identical repeat: kept once
        "P_n2,2024-01-01 00:00,1\n"
        "P_n2,2024-01-01 00:00,2\n"  # conflicting repeat
        ",2024-01-01 00:00,3\n"
        "P_n1,2024-01-01 00:05,abc\n"
        "P_n1,2023-12-31 23:55,49\n"  # out of order for P_n1
    )
    report = imp(store, write(tmp_path, "readings.csv", text))
    assert report.added == 2 and report.collapsed == 1
    assert list(report.rejections["line"]) == [4, 5, 6, 7]
    assert rejection(report, 6)["reason"] == "missing sensor id"
    assert rejection(report, 7)["reason"] == "not a number"
    assert any("out of time order" in w and "8" in w for w in report.warnings)


def test_long_file_with_unknown_sensor_is_refused(store, tmp_path):
    path = write(tmp_path, "readings.csv", "sensor_id,timestamp,value\nP_n1,2024-01-01,1\nP_x9,2024-01-01,2\n")
    with pytest.raises(TelemetryImportError, match="P_x9"):
        imp(store, path)
    assert stored(store).empty


def test_long_parquet(store, tmp_path):
    df = pd.DataFrame(
        {
            "sensor_id": ["P_n1", "P_n1", "Q_p1"],
            "time": pd.to_datetime(["2024-01-01 07:00", "2024-01-01 07:05", "2024-01-01 07:00"]),
            "value": [50.0, np.nan, 2.0],
            "unit": ["m", "m", "L/s"],
        }
    )
    path = tmp_path / "readings.parquet"
    df.to_parquet(path)
    report = imp(store, path, tz="Asia/Jakarta")
    assert (report.added, report.gaps) == (2, 1)
    assert value_at(store, "P_n1", "2024-01-01 00:00") == 50.0
    assert value_at(store, "Q_p1", "2024-01-01 00:00") == pytest.approx(7.2)
    # aware timestamps are kept as they are
    df = pd.DataFrame(
        {"sensor_id": ["P_n2"], "timestamp": [pd.Timestamp("2024-01-01 09:00", tz="Europe/Istanbul")], "value": [1.0]}
    )
    df.to_parquet(path)
    imp(store, path, tz="Asia/Jakarta")
    assert value_at(store, "P_n2", "2024-01-01 06:00") == 1.0


def test_wide_parquet(store, tmp_path):
    df = pd.DataFrame(
        {"timestamp": pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC"), "n1": [1.0, 2.0, math.inf]}
    )
    path = tmp_path / "pressures.parquet"
    df.to_parquet(path)
    report = imp(store, path)
    assert (report.added, report.rejected) == (2, 1)
    assert rejection(report, 3)["reason"] == "infinite value"  # Parquet rows are numbered from 1


# -- atomicity -------------------------------------------------------------------------------------
def test_strict_mode_stores_nothing_when_anything_is_rejected(store, tmp_path):
    text = WIDE.replace("50.5", "oops")
    with pytest.raises(ImportRejectedError) as err:
        imp(store, write(tmp_path, "pressures.csv", text), strict=True)
    assert err.value.report.rejected == 1 and not err.value.report.stored
    assert "line 3" in str(err.value)
    assert stored(store).empty and store.imports().empty


def test_strict_mode_refuses_a_conflict_with_stored_data(store, tmp_path):
    imp(store, write(tmp_path, "pressures.csv", "timestamp,n1\n2024-01-01 00:00,50\n"))
    text = "timestamp,n1\n2024-01-01 00:00,51\n2024-01-01 00:05,52\n"
    with pytest.raises(ImportRejectedError):
        imp(store, write(tmp_path, "pressures.csv", text), strict=True)
    assert list(stored(store)["value"]) == [50.0]  # the new 00:05 reading was not stored either
    assert len(store.imports()) == 1


def test_failed_import_leaves_stored_data_untouched(store, tmp_path, monkeypatch):
    imp(store, write(tmp_path, "pressures.csv", WIDE))
    before = stored(store)
    with pytest.raises(TelemetryImportError):
        imp(store, write(tmp_path, "pressures.csv", "timestamp,n1,nope\n2024-02-01 00:00,1,2\n"))
    pd.testing.assert_frame_equal(stored(store), before)

    # a failure while storing (after the readings were written) rolls the whole file back
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "record_import", broken)
    with pytest.raises(OSError):
        imp(store, write(tmp_path, "pressures.csv", "timestamp,n1\n2024-02-01 00:00,1\n"))
    pd.testing.assert_frame_equal(stored(store), before)


def test_auto_registration_is_rolled_back_with_a_failed_import(store, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "record_import", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        imp(
            store,
            write(tmp_path, "pressures.csv", "timestamp,n54\n2024-01-01,1\n"),
            register=True,
            network={"nodes": ["n54"], "links": []},
        )
    assert "P_n54" not in set(store.sensors()["sensor_id"])


def test_dry_run_stores_nothing_but_reports(store, tmp_path):
    imp(store, write(tmp_path, "pressures.csv", "timestamp,n1\n2024-01-01 00:00,50\n"))
    report = imp(store, write(tmp_path, "pressures.csv", WIDE), dry_run=True)
    assert (report.added, report.unchanged, report.stored) == (5, 1, False)
    assert len(stored(store)) == 1 and len(store.imports()) == 1


def test_report_is_json_serialisable(store, tmp_path):
    report = imp(store, write(tmp_path, "pressures.csv", WIDE.replace("50.5", "x")))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rejections"][0] == {"line": 3, "column": "n1", "value": "x", "reason": "not a number"}


# -- command line ----------------------------------------------------------------------------------
def test_cli_register_import_query(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "cli.duckdb")
    registry = write(
        tmp_path,
        "registry.csv",
        "sensor_id,kind,unit,node_id,link_id,dma,description\nP_n1,pressure,,n1,,A,\nQ_p1,flow,L/s,,p1,A,inlet\n",
    )
    result = runner.invoke(telemetry_app, ["register", str(registry), "--store", db])
    assert result.exit_code == 0, result.output
    assert "2 new" in result.output

    good = write(tmp_path, "pressures.csv", "timestamp,n1\n2024-01-01 07:00,50\n2024-01-01 07:05,bad\n")
    bad = write(tmp_path, "flows.csv", "timestamp,p1,p404\n2024-01-01 07:00,1,2\n")
    rejected = tmp_path / "rejected.csv"
    result = runner.invoke(
        telemetry_app,
        ["import", str(good), str(bad), "--tz", "Asia/Jakarta", "--rejections-out", str(rejected), "--store", db],
    )
    assert result.exit_code == 1  # flows.csv was refused
    assert "p404" in result.output
    rej = pd.read_csv(rejected)
    assert list(rej.columns) == ["file", "line", "column", "value", "reason"]
    assert (rej["line"].iloc[0], rej["value"].iloc[0]) == (3, "bad")

    out = tmp_path / "wide.csv"
    result = runner.invoke(telemetry_app, ["query", "--sensor", "P_n1", "--out", str(out), "--store", db])
    assert result.exit_code == 0, result.output
    wide = pd.read_csv(out)
    assert list(wide.columns) == ["timestamp", "P_n1 [m]"]
    assert wide["timestamp"].iloc[0] == "2024-01-01T00:00:00Z"
    # the file goes back in as it came out: nothing new, nothing conflicting
    result = runner.invoke(telemetry_app, ["import", str(out), "--store", db])
    assert result.exit_code == 0, result.output
    with open_store(db) as st:
        assert len(st.readings()) == 1 and len(st.imports()) == 2
        assert json.loads(st.imports()["report"].iloc[-1])["unchanged"] == 1
        # the zone named at the first import became the store's (night hours, dashboard, model clock)
        assert st.meta("timezone") == "Asia/Jakarta"

    result = runner.invoke(telemetry_app, ["sensors", "--kind", "flow", "--store", db])
    assert result.exit_code == 0 and "Q_p1" in result.output and "P_n1" not in result.output


def test_cli_help_texts():
    runner = CliRunner()
    for command in ([], ["import"], ["sensors"], ["register"], ["query"]):
        result = runner.invoke(telemetry_app, [*command, "--help"])
        assert result.exit_code == 0
    assert "--rejections-out" in runner.invoke(telemetry_app, ["import", "--help"]).output


def test_pressures_that_look_like_kpa_get_a_warning_not_a_rejection(store, tmp_path):
    report = imp(
        store, write(tmp_path, "pressures.csv", "timestamp,n1,n2\n2024-01-01 00:00,450,45\n2024-01-01 00:05,452,46\n")
    )
    assert report.added == 4 and report.rejected == 0
    assert len(report.warnings) == 1 and "'n1'" in report.warnings[0] and "state its unit" in report.warnings[0]
    report = imp(store, write(tmp_path, "pressures.csv", "timestamp,n1 [kPa]\n2024-01-01 00:10,450\n"))
    assert report.warnings == []


def test_gzipped_and_windows_encoded_files(store, tmp_path):
    import gzip

    path = tmp_path / "flows.csv.gz"
    path.write_bytes(gzip.compress(b"timestamp,p1\n2024-01-01 00:00,2\n"))
    assert imp(store, path).added == 1
    # an Excel export in Windows-1252 with the unit in the header
    path = tmp_path / "flows.csv"
    path.write_bytes("timestamp,p1 [m³/h]\n2024-01-01 00:05,3\n".encode("cp1252"))
    assert imp(store, path).added == 1
    assert value_at(store, "Q_p1", "2024-01-01 00:05") == 3.0


def test_long_file_ragged_rows_and_missing_columns(store, tmp_path):
    text = "sensor_id,timestamp,value\nP_n1,2024-01-01 00:00,1\nP_n1,2024-01-01 00:05\nP_n1,2024-01-01 00:10,3\n"
    report = imp(store, write(tmp_path, "readings.csv", text))
    assert report.added == 2 and list(report.rejections["line"]) == [3]
    with pytest.raises(TelemetryImportError, match="no timestamp column"):
        imp(store, write(tmp_path, "readings.csv", "sensor_id,when,value\nP_n1,2024-01-01,1\n"))


INP = """[TITLE]
tiny
[JUNCTIONS]
 n1  10  1
 n2  10  1
 n54 10  1
[RESERVOIRS]
 R1  60
[PIPES]
 p1  R1  n1  100  200  100  0  Open
 p2  n1  n2  100  200  100  0  Open
 p7  n2  n54 100  200  100  0  Open
[OPTIONS]
 Units  CMH
[END]
"""


def test_cli_model_registers_sensors_on_its_nodes(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "cli.duckdb")
    model = write(tmp_path, "tiny.inp", INP)
    data = write(tmp_path, "pressures.csv", "timestamp,n2,n54\n2024-01-01 00:00,40,41\n")
    result = runner.invoke(telemetry_app, ["import", str(data), "--model", str(model), "--store", db])
    assert result.exit_code == 0, result.output
    assert "P_n2" in result.output and "P_n54" in result.output
    with open_store(db) as st:
        assert set(st.sensors()["sensor_id"]) == {"P_n2", "P_n54"}
        assert len(st.readings()) == 2
    bad = write(tmp_path, "pressures.csv", "timestamp,n2,n99\n2024-01-01 00:05,40,41\n")
    result = runner.invoke(telemetry_app, ["import", str(bad), "--model", str(model), "--store", db])
    assert result.exit_code == 1 and "n99" in result.output


def test_conflict_with_stored_value_points_at_the_row_it_came_from(store, tmp_path):
    imp(store, write(tmp_path, "pressures.csv", "timestamp,n1,n2\n2024-01-01 00:00,50,40\n"))
    # the timestamp is on two rows; n1's reading is on the second one only
    text = "timestamp,n1,n2\n2024-01-01 00:00,,40\n2024-01-01 00:00,51,40\n"
    report = imp(store, write(tmp_path, "pressures.csv", text))
    row = rejection(report, 3)
    assert (row["column"], row["value"]) == ("n1", "51.0")
    assert "already stored as 50.0 m" in row["reason"]


def test_an_imports_named_time_zone_becomes_the_stores_once(tmp_path):
    """A place's zone (Europe/Istanbul) is kept as the store's when it has none; a fixed offset
    (UTC+7) is not a place's clock, and a later import does not change the zone already set."""
    from tirtasu.cli.telemetry import _remember_time_zone

    with open_store(str(tmp_path / "t.duckdb")) as st:
        assert _remember_time_zone(st, "UTC+7") is None and st.meta("timezone") is None
        assert _remember_time_zone(st, "Europe/Istanbul") == "Europe/Istanbul"
        assert _remember_time_zone(st, "Asia/Jakarta") is None
        assert st.meta("timezone") == "Europe/Istanbul"

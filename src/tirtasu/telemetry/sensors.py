"""The sensor registry: what a sensor measures, where it sits and in which unit it reports."""

from __future__ import annotations

import pandas as pd

from tirtasu.units import INTERNAL_UNIT, KINDS, conversion_factor

#: columns of the sensor registry, in order
SENSOR_COLUMNS = ("sensor_id", "kind", "unit", "node_id", "link_id", "dma", "description")

#: prefix of the sensor ids tirtasu makes for wide files (one column per node or link)
KIND_PREFIX = {"pressure": "P", "flow": "Q", "level": "L", "demand": "D", "quality": "WQ", "head": "H"}

#: kinds measured on links (the others sit on nodes)
LINK_KINDS = frozenset({"flow"})

#: the wide file names of the SCADA / BattLeDIM convention, and the kind of each
WIDE_FILE_KINDS = {
    "pressures": "pressure",
    "flows": "flow",
    "levels": "level",
    "demands": "demand",
    "heads": "head",
    "quality": "quality",
}


def sensor_id_for(kind: str, location: str) -> str:
    """The id tirtasu gives a sensor of ``kind`` on node/link ``location`` (e.g. ``P_n54``)."""
    if kind not in KIND_PREFIX:
        raise ValueError(f"unknown sensor kind {kind!r}; expected one of {', '.join(KINDS)}")
    return f"{KIND_PREFIX[kind]}_{location}"


def make_registry(rows) -> pd.DataFrame:
    """Build and check a sensor registry from records or a DataFrame.

    Fills ``unit`` with the internal unit when missing, checks that every kind and unit is known,
    that each sensor sits on a node (pressure, level, demand, quality) or a link (flow), and that
    ids are unique.
    """
    df = pd.DataFrame(rows)
    missing = [c for c in ("sensor_id", "kind") if c not in df.columns]
    if missing:
        raise ValueError(f"sensor registry lacks column(s) {', '.join(missing)}")
    for col in SENSOR_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[list(SENSOR_COLUMNS)].copy()
    df["sensor_id"] = df["sensor_id"].astype(str).str.strip()
    df["kind"] = df["kind"].astype(str).str.strip().str.lower()
    dup = df["sensor_id"][df["sensor_id"].duplicated()]
    if len(dup):
        raise ValueError(f"sensor id(s) listed twice in the registry: {', '.join(dup.unique()[:10])}")
    for i, row in df.iterrows():
        where = f"sensor {row.sensor_id!r}"
        if row.kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {row.kind!r}; expected one of {', '.join(KINDS)}")
        if pd.isna(row.unit) or str(row.unit).strip() == "":
            df.at[i, "unit"] = INTERNAL_UNIT[row.kind] or "-"
        else:
            try:
                conversion_factor(row.unit, row.kind)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if row.kind in LINK_KINDS and pd.isna(row.link_id) and not pd.isna(row.node_id):
            raise ValueError(f"{where}: a {row.kind} sensor sits on a link; got node {row.node_id!r}")
    return df.astype({c: "object" for c in SENSOR_COLUMNS}).where(df.notna(), None)

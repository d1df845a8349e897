"""Hydraulic simulation with the EPANET engine, results in tirtasu's units."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import wntr

__all__ = ["HydraulicResults", "run_hydraulics"]


@dataclass
class HydraulicResults:
    """Results of an extended-period run, indexed by time.

    Attributes
    ----------
    pressure : pandas.DataFrame [m]
        Per node (tanks and reservoirs included).
    head : pandas.DataFrame [m]
    demand : pandas.DataFrame [m³/h]
        Per node: consumption at junctions, net outflow at tanks and reservoirs.
    flow : pandas.DataFrame [m³/h]
        Per link, positive from start node to end node.
    """

    pressure: pd.DataFrame
    head: pd.DataFrame
    demand: pd.DataFrame
    flow: pd.DataFrame


def run_hydraulics(
    wn: wntr.network.WaterNetworkModel,
    duration_h: float | None = None,
    start: str | pd.Timestamp | None = None,
) -> HydraulicResults:
    """Run the model with the EPANET 2.2 engine (through WNTR's toolkit binding).

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
        Left unchanged.
    duration_h : float, optional [h]
        Override the model's duration.
    start : datetime-like, optional
        UTC time of the simulation's start; the index is then timestamps, else seconds.
    """
    original = wn.options.time.duration
    if duration_h is not None:
        wn.options.time.duration = int(round(duration_h * 3600))
    try:
        with tempfile.TemporaryDirectory(prefix="tirtasu-epanet-") as tmp:
            sim = wntr.sim.EpanetSimulator(wn)
            res = sim.run_sim(file_prefix=str(Path(tmp) / "run"), version=2.2)
    finally:
        wn.options.time.duration = original
    node, link = res.node, res.link

    def index(df: pd.DataFrame) -> pd.DataFrame:
        if start is not None:
            df = df.copy()
            df.index = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(df.index, unit="s")
            df.index.name = "time"
        return df

    return HydraulicResults(
        pressure=index(node["pressure"]),
        head=index(node["head"]),
        demand=index(node["demand"] * 3600.0),
        flow=index(link["flowrate"] * 3600.0),
    )

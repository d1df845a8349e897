"""District metered areas (DMAs).

A DMA is a set of nodes whose inflow is metered. tirtasu defines DMAs either from a table of
node → DMA, or by cutting the network graph at its boundary links (flow meters, closed
valves): every connected part left that holds demand nodes is a DMA.

For each DMA the boundary links carry a ``sign``: +1 when the link's positive flow direction
(EPANET's start node → end node) enters the DMA, −1 when it leaves. The DMA's net inflow is
then Σ sign·Q over its boundary links, minus the rate of storage change of tanks inside it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pandas as pd
import wntr

from tirtasu.network.model import node_demands_m3h

__all__ = ["DMAs", "dmas_from_boundaries", "dmas_from_table", "read_dma_csv", "dma_report", "closed_links"]


@dataclass
class DMAs:
    """A DMA partition of a network.

    Attributes
    ----------
    nodes : pandas.DataFrame
        node_id, dma (nodes outside every DMA, e.g. sources, are absent).
    links : pandas.DataFrame
        dma, link_id, sign (+1: positive flow enters the DMA), closed (bool).
    """

    nodes: pd.DataFrame
    links: pd.DataFrame

    @property
    def names(self) -> list[str]:
        return sorted(self.nodes["dma"].unique(), key=_natural_key)

    def node_dma(self) -> dict[str, str]:
        return dict(zip(self.nodes["node_id"], self.nodes["dma"]))


def _natural_key(name: str):
    """Sort key that puts DMA-2 before DMA-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def closed_links(wn: wntr.network.WaterNetworkModel) -> list[str]:
    """Links closed in the model's initial status (closed pipes and valves)."""
    closed = []
    for name, link in wn.links():
        status = getattr(link, "initial_status", None)
        if status is not None and str(getattr(status, "name", status)).upper() == "CLOSED":
            # A pump or a control valve closed at t=0 may open later; a closed pipe or
            # isolation valve is a boundary.
            if link.link_type == "Pipe" or getattr(link, "valve_type", None) in ("TCV", "GPV"):
                closed.append(name)
    return closed


def _boundary_table(wn, node_dma: dict[str, str], closed: set[str]) -> pd.DataFrame:
    rows = []
    for name, link in wn.links():
        a, b = node_dma.get(link.start_node_name), node_dma.get(link.end_node_name)
        if a == b:
            continue
        if a is not None:
            rows.append((a, name, -1, name in closed))
        if b is not None:
            rows.append((b, name, +1, name in closed))
    return pd.DataFrame(rows, columns=["dma", "link_id", "sign", "closed"])


def dmas_from_boundaries(
    wn: wntr.network.WaterNetworkModel,
    boundary_links,
    include_closed: bool = True,
    prefix: str = "DMA-",
) -> DMAs:
    """Derive DMAs by cutting the network at ``boundary_links``.

    Parameters
    ----------
    wn : wntr.network.WaterNetworkModel
    boundary_links : iterable of str
        Link ids where the network is cut: flow meters, closed boundary valves, PRVs feeding
        a zone, pumps.
    include_closed : bool
        Also cut at pipes and valves that are closed in the model.
    prefix : str
        DMAs are named ``prefix`` + 1, 2, … from the largest (by number of junctions).

    Returns
    -------
    DMAs
        Parts without any junction (a reservoir on its own) are sources, not DMAs.

    Raises
    ------
    KeyError
        A boundary link is not in the model.
    """
    boundary = list(dict.fromkeys(str(b) for b in boundary_links))
    unknown = [b for b in boundary if b not in wn.link_name_list]
    if unknown:
        raise KeyError(f"boundary link(s) not in the model: {', '.join(unknown)}")
    closed = set(closed_links(wn)) if include_closed else set()
    cut = set(boundary) | closed
    graph = nx.Graph()
    graph.add_nodes_from(wn.node_name_list)
    graph.add_edges_from(
        (link.start_node_name, link.end_node_name) for name, link in wn.links() if name not in cut
    )
    junctions = set(wn.junction_name_list)
    parts = [p for p in nx.connected_components(graph) if p & junctions]
    parts.sort(key=lambda p: (-len(p & junctions), min(p, key=_natural_key)))
    node_dma = {n: f"{prefix}{i}" for i, part in enumerate(parts, 1) for n in part}
    nodes = pd.DataFrame(sorted(node_dma.items(), key=lambda kv: (_natural_key(kv[1]), _natural_key(kv[0]))), columns=["node_id", "dma"])
    return DMAs(nodes=nodes, links=_boundary_table(wn, node_dma, closed))


def read_dma_csv(path: str | Path) -> pd.DataFrame:
    """Read a node → DMA table (columns ``node_id,dma``; header required).

    Raises
    ------
    ValueError
        Missing columns, empty cells or a node listed twice with different DMAs; the message
        names the line.
    """
    path = Path(path)
    rows, seen = [], {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "node_id" not in header or "dma" not in header:
            raise ValueError(f"{path}:1: expected columns node_id,dma; got {','.join(reader.fieldnames or [])}")
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            node, dma = (row.get("node_id") or "").strip(), (row.get("dma") or "").strip()
            if not node or not dma:
                raise ValueError(f"{path}:{line}: empty node_id or dma")
            if node in seen and seen[node] != dma:
                raise ValueError(f"{path}:{line}: node {node!r} already assigned to {seen[node]!r}")
            seen[node] = dma
            rows.append((node, dma))
    return pd.DataFrame(rows, columns=["node_id", "dma"]).drop_duplicates()


def dmas_from_table(wn: wntr.network.WaterNetworkModel, table: pd.DataFrame) -> DMAs:
    """DMAs from a node → DMA table; boundary links are the links between different DMAs.

    Raises
    ------
    KeyError
        The table names nodes that are not in the model.
    """
    table = pd.DataFrame(table)[["node_id", "dma"]].astype(str)
    unknown = sorted(set(table["node_id"]) - set(wn.node_name_list), key=_natural_key)
    if unknown:
        raise KeyError(f"{len(unknown)} node(s) in the DMA table are not in the model: {', '.join(unknown[:10])}")
    node_dma = dict(zip(table["node_id"], table["dma"]))
    return DMAs(nodes=table.reset_index(drop=True), links=_boundary_table(wn, node_dma, set(closed_links(wn))))


def dma_report(wn: wntr.network.WaterNetworkModel, dmas: DMAs, flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per DMA: nodes, junctions, tanks, mains length, inflow and outflow links.

    Parameters
    ----------
    flows : pandas.DataFrame, optional
        Link flows [m³/h] (e.g. from :func:`tirtasu.network.run_hydraulics`). With them a boundary
        link is an inflow or an outflow by the direction its mean flow takes; without them by
        its drawn direction (sign).

    Returns
    -------
    pandas.DataFrame
        dma, nodes, junctions, tanks, demand_nodes, mains_km, mean_demand_m3h, inflow_links,
        outflow_links, closed_links.
    """
    node_dma = dmas.node_dma()
    pipe_km: dict[str, float] = {}
    for _, pipe in wn.pipes():
        a, b = node_dma.get(pipe.start_node_name), node_dma.get(pipe.end_node_name)
        # a pipe across a boundary counts half to each side
        for side in {a, b} - {None}:
            pipe_km[side] = pipe_km.get(side, 0.0) + pipe.length / 1000.0 / (1 if a == b else 2)
    demand = node_demands_m3h(wn)
    demand["dma"] = demand.index.map(node_dma)
    demand_by_dma = demand.groupby("dma")["mean_m3h"].sum()
    demand_nodes = demand[demand["base_m3h"] > 0].groupby("dma").size()
    rows = []
    for dma in dmas.names:
        members = dmas.nodes.loc[dmas.nodes["dma"] == dma, "node_id"]
        links = dmas.links[dmas.links["dma"] == dma]
        inflow, outflow, closed = [], [], []
        for _, row in links.iterrows():
            if row["closed"]:
                closed.append(row["link_id"])
                continue
            direction = row["sign"]
            if flows is not None and row["link_id"] in flows.columns:
                mean = float(flows[row["link_id"]].mean())
                direction = row["sign"] * (1 if mean >= 0 else -1)
            (inflow if direction > 0 else outflow).append(row["link_id"])
        rows.append(
            {
                "dma": dma,
                "nodes": len(members),
                "junctions": int(members.isin(wn.junction_name_list).sum()),
                "tanks": ", ".join(n for n in members if n in wn.tank_name_list),
                "demand_nodes": int(demand_nodes.get(dma, 0)),
                "mains_km": pipe_km.get(dma, 0.0),
                "mean_demand_m3h": float(demand_by_dma.get(dma, 0.0)),
                "inflow_links": ", ".join(inflow),
                "outflow_links": ", ".join(outflow),
                "closed_links": ", ".join(closed),
            }
        )
    return pd.DataFrame(rows)

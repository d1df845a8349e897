"""GeoJSON export of a network and its DMAs.

EPANET models carry coordinates but no coordinate reference system. tirtasu keeps the
model's coordinates as they are and says which CRS they are in: the one the user names, or,
when every coordinate is a plausible longitude/latitude, EPSG:4326 (marked as inferred),
else "unknown (model coordinates)". The CRS is written both as the legacy GeoJSON ``crs``
member (read by QGIS and GDAL) and in the collection's ``properties``.
"""

from __future__ import annotations

import wntr

from tirtasu.network.dma import DMAs
from tirtasu.network.model import node_demands_m3h

__all__ = ["network_geojson", "guess_crs"]


def guess_crs(wn: wntr.network.WaterNetworkModel) -> tuple[str | None, str]:
    """(crs, how): the CRS the coordinates look like and how that was decided."""
    coords = [n.coordinates for _, n in wn.nodes() if n.coordinates is not None]
    if coords and all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in coords) and any(
        (x, y) != (0, 0) for x, y in coords
    ):
        return "EPSG:4326", "inferred: every coordinate is a valid longitude/latitude"
    return None, "unknown: the model's own coordinates (EPANET files carry no CRS)"


def network_geojson(wn: wntr.network.WaterNetworkModel, dmas: DMAs | None = None, crs: str | None = None) -> dict:
    """A FeatureCollection of the model's nodes (Points) and links (LineStrings with vertices).

    Every feature has ``id``, ``type`` (Junction, Tank, Reservoir, Pipe, Pump, Valve) and, when
    ``dmas`` is given, ``dma`` (links on a boundary: ``dma`` of their start node and
    ``boundary: true``); each DMA is then also a feature of type ``DMA`` whose geometry is the
    MultiLineString of the links inside it. Pipes carry length [m], diameter [m] and roughness; junctions
    elevation [m] and base demand [m³/h].
    """
    if crs:
        crs_name, how = crs, "given by the user"
    else:
        crs_name, how = guess_crs(wn)
    node_dma = dmas.node_dma() if dmas is not None else {}
    base_demand = node_demands_m3h(wn)["base_m3h"]
    features = []
    for name, node in wn.nodes():
        props = {"id": name, "type": node.node_type, "elevation_m": getattr(node, "elevation", None)}
        if node.node_type == "Junction":
            props["base_demand_m3h"] = float(base_demand[name])
        if node_dma:
            props["dma"] = node_dma.get(name)
        features.append(
            {"type": "Feature", "id": name, "geometry": {"type": "Point", "coordinates": list(node.coordinates)}, "properties": props}
        )
    for name, link in wn.links():
        start, end = wn.get_node(link.start_node_name), wn.get_node(link.end_node_name)
        line = [list(start.coordinates), *[list(v) for v in (link.vertices or [])], list(end.coordinates)]
        props = {"id": name, "type": link.link_type, "start_node": link.start_node_name, "end_node": link.end_node_name}
        if link.link_type == "Pipe":
            props.update(length_m=link.length, diameter_m=link.diameter, roughness=link.roughness)
        elif link.link_type == "Valve":
            props.update(valve_type=link.valve_type)
        if node_dma:
            a, b = node_dma.get(link.start_node_name), node_dma.get(link.end_node_name)
            props["dma"] = a if a is not None else b
            props["boundary"] = a != b
        features.append(
            {"type": "Feature", "id": name, "geometry": {"type": "LineString", "coordinates": line}, "properties": props}
        )
    if dmas is not None:
        # one feature per DMA: the pipes inside it, so that a GIS can draw or select the area
        lines: dict[str, list] = {}
        for f in features:
            p = f["properties"]
            if f["geometry"]["type"] == "LineString" and not p.get("boundary") and p.get("dma"):
                lines.setdefault(p["dma"], []).append(f["geometry"]["coordinates"])
        for dma in dmas.names:
            features.append(
                {
                    "type": "Feature",
                    "id": f"dma:{dma}",
                    "geometry": {"type": "MultiLineString", "coordinates": lines.get(dma, [])},
                    "properties": {"id": dma, "type": "DMA", "dma": dma, "nodes": int((dmas.nodes["dma"] == dma).sum())},
                }
            )
    collection = {
        "type": "FeatureCollection",
        "name": wn.name or "network",
        "properties": {"crs": crs_name, "crs_source": how, "generator": "tirtasu"},
        "features": features,
    }
    if crs_name:
        collection["crs"] = {"type": "name", "properties": {"name": _ogc_urn(crs_name)}}
    return collection


def _ogc_urn(crs: str) -> str:
    if crs.upper().startswith("EPSG:"):
        code = crs.split(":", 1)[1]
        return "urn:ogc:def:crs:OGC:1.3:CRS84" if code == "4326" else f"urn:ogc:def:crs:EPSG::{code}"
    return crs


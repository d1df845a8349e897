"""The simulated pilot utility on L-Town (the BattLeDIM network).

What the pilot holds, as a utility starting a smart-network pilot would have it:

- the L-Town model (from the ``epyt`` package), cut into three DMAs at its metered inlets:
  the two reservoir mains p227 and p235, the pump PUMP_1 that fills tank T1 (the pumped zone),
  and PRV-3 (a pressure-reduced zone, which the pilot meters);
- the BattLeDIM sensor layout marked in the model (33 pressure sensors, flow meters on p227,
  p235 and PUMP_1, a level sensor in T1, 82 smart meters) plus the PRV-3 inlet meter;
- two months of 5-minute telemetry (September–October 2025) from a "true" network with model
  error, demand noise, sensor noise, two sensor faults and six leaks, imported from the wide
  CSVs a SCADA export would give;
- customer accounts on every demand node and their billed consumption per month, with the
  meter under-registration, unmetered accounts and unauthorized connections of a real
  utility; the truth of each is kept in the store's metadata (``pilot_truth``) for testing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tirtasu.network import dmas_from_boundaries, load_model, summarize
from tirtasu.simulator import Scenario, layout_from_model_tags, random_faults, random_leaks, simulate
from tirtasu.simulator.run import FILE_OF_KIND
from tirtasu.store.base import Store

__all__ = ["PilotConfig", "lton_model_path", "build_pilot", "pilot_is_current", "write_pilot_audit"]

PILOT_VERSION = 1


def lton_model_path() -> Path:
    """Path of L-TOWN.inp as shipped by the ``epyt`` package (no download)."""
    import epyt

    path = Path(epyt.__file__).parent / "networks" / "L-TOWN.inp"
    if not path.is_file():
        raise FileNotFoundError(f"L-TOWN.inp not found at {path}; is the epyt package installed completely?")
    return path


@dataclass
class PilotConfig:
    """Parameters of the pilot; a change of any of them rebuilds it."""

    start: str = "2025-09-01 00:00"
    days: float = 61.0
    seed: int = 2025
    boundary_links: list[str] = field(default_factory=lambda: ["p227", "p235", "PUMP_1", "PRV-3"])
    extra_flow_meters: list[str] = field(default_factory=lambda: ["PRV-3"])
    n_leaks: int = 6
    n_faults: int = 2
    leak_flow_fraction: tuple[float, float] = (0.015, 0.08)
    household_m3_per_day: float = 0.6
    commercial_m3_per_day: float = 3.0
    unmetered_share: float = 0.03
    unauthorized_node_share: float = 0.02
    meter_under_registration: float = 0.03  # mean share of consumption customer meters miss

    def key(self) -> str:
        text = json.dumps({"version": PILOT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def pilot_is_current(store: Store, config: PilotConfig) -> bool:
    info = store.meta("pilot")
    return bool(info) and info.get("key") == config.key()


def _customers_and_billing(wn, node_dma, monthly: pd.DataFrame, cfg: PilotConfig, rng: np.random.Generator):
    """Accounts on every demand node and their monthly bills [m³], with the truth behind them.

    Bills run from the first to the last day of a month (inclusive), or to the last simulated day.
    """
    last_day = (pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.days) - pd.Timedelta(seconds=1)).normalize()
    category_of = {}
    for name, junction in wn.junctions():
        best = max(junction.demand_timeseries_list, key=lambda d: d.base_value, default=None)
        pattern = (best.pattern_name or "") if best is not None else ""
        category_of[name] = (
            "industrial" if "indus" in pattern.lower() else "commercial" if "commer" in pattern.lower() else "residential"
        )
    nodes = [n for n in monthly.columns if monthly[n].sum() > 0]
    unauthorized = set(rng.choice(nodes, size=int(round(cfg.unauthorized_node_share * len(nodes))), replace=False))
    days = np.array([(min(m + pd.offsets.MonthEnd(1), last_day) - m).days + 1 for m in monthly.index])
    customers, bills = [], []
    truth = {"consumption_m3": 0.0, "billed_metered_m3": 0.0, "billed_unmetered_m3": 0.0,
             "meter_under_registration_m3": 0.0, "unauthorized_m3": 0.0, "unmetered_consumption_m3": 0.0}
    for node in nodes:
        volumes = monthly[node].to_numpy()
        truth["consumption_m3"] += volumes.sum()
        if node in unauthorized:  # an illegal connection: consumption with no account
            truth["unauthorized_m3"] += volumes.sum()
            continue
        category = category_of.get(node, "residential")
        per_day = volumes.sum() / days.sum()  # mean daily consumption of the node [m³/d]
        if category == "residential":
            n_accounts = max(1, int(round(per_day / cfg.household_m3_per_day)))
        elif category == "commercial":
            n_accounts = max(1, int(round(per_day / cfg.commercial_m3_per_day)))
        else:
            n_accounts = 1
        shares = rng.dirichlet(np.full(n_accounts, 5.0))
        for k, share in enumerate(shares, start=1):
            cid = f"C-{node}-{k:03d}"
            metered = rng.random() >= cfg.unmetered_share
            customers.append({"customer_id": cid, "node_id": node, "dma": node_dma.get(node), "category": category, "metered": metered})
            for month, volume in zip(monthly.index, volumes * share):
                if metered:
                    under = float(np.clip(rng.normal(cfg.meter_under_registration, 0.02), -0.02, 0.3))
                    billed = volume * (1 - under)
                    truth["billed_metered_m3"] += billed
                    truth["meter_under_registration_m3"] += volume - billed
                else:  # flat-rate account: billed an assessed volume
                    billed = volume * float(rng.uniform(0.8, 1.2))
                    truth["billed_unmetered_m3"] += billed
                    truth["unmetered_consumption_m3"] += volume
                bills.append(
                    {
                        "customer_id": cid,
                        "period_start": month.date(),
                        # a bill covers the month, or the part of it that was simulated
                        "period_end": min(month + pd.offsets.MonthEnd(1), last_day).date(),
                        "billed_m3": round(billed, 3),
                    }
                )
    truth["unauthorized_nodes"] = sorted(unauthorized)
    return pd.DataFrame(customers), pd.DataFrame(bills), truth


def write_pilot_audit(store: Store, path: str | Path, store_url: str | None = None) -> Path:
    """Write the pilot's audit file: ``tirtasu nrw template`` over the pilot's whole period."""
    from tirtasu.nrw.template import audit_template

    info = store.meta("pilot")
    path = Path(path)
    path.write_text(audit_template(store, info["start"], info["end"], name="Pilot utility (L-Town)"))
    return path


def build_pilot(store: Store, workdir: str | Path, config: PilotConfig | None = None, progress=None, importer=None) -> dict:
    """Simulate the pilot and load it into ``store``; returns a summary.

    Parameters
    ----------
    store : Store
    workdir : path
        Where the simulated exports (the wide CSVs), the ground truth and the model go.
    progress : callable, optional
        ``progress(stage: str, fraction: float)``.
    importer : callable, optional
        ``importer(store, path, kind) -> report``: how the wide CSVs get into the store;
        default :func:`tirtasu.telemetry.importer.import_file`, as a user would import them.
    """
    cfg = config or PilotConfig()
    workdir = Path(workdir)
    report = progress or (lambda stage, fraction: None)
    model_path = lton_model_path()
    wn = load_model(model_path)
    rng = np.random.default_rng(cfg.seed)
    dmas = dmas_from_boundaries(wn, cfg.boundary_links)
    node_dma = dmas.node_dma()

    layout = layout_from_model_tags(model_path)
    layout.flow += [l for l in cfg.extra_flow_meters if l not in layout.flow]
    start = pd.Timestamp(cfg.start)
    end = start + pd.Timedelta(days=cfg.days)
    mean_demand = summarize(wn).mean_demand_m3h
    leaks = random_leaks(
        wn, cfg.n_leaks, start, end, mean_demand, rng, cfg.leak_flow_fraction,
        exclude_links=cfg.boundary_links,
    )
    scenario = Scenario(
        model=str(model_path),
        start=cfg.start,
        days=cfg.days,
        seed=cfg.seed,
        layout=layout,
        leaks=leaks,
        faults=random_faults(layout, cfg.n_faults, start, end, rng),
    )
    sim = simulate(scenario, workdir, progress=lambda f: report("simulating the network", f))

    # where each meter sits: node sensors in their node's DMA, an inlet meter in the DMA it feeds
    inlet_dma = {r.link_id: r.dma for r in dmas.links.itertuples() if r.sign > 0}
    registry = sim.registry.copy()
    registry["dma"] = [
        inlet_dma.get(link) if kind == "flow" else node_dma.get(node)
        for kind, node, link in zip(registry["kind"], registry["node_id"], registry["link_id"])
    ]
    registry["description"] = registry["kind"].map(
        {"pressure": "pressure logger", "flow": "DMA inlet flow meter", "level": "tank level", "demand": "smart meter (AMR)"}
    )
    customers, billing, truth = _customers_and_billing(wn, node_dma, sim.node_consumption_m3, cfg, rng)

    if importer is None:
        from tirtasu.telemetry.importer import import_file

        def importer(st, path, kind):
            return import_file(st, path, kind=kind)

    with store.transaction():
        store.put_model("L-TOWN", model_path.read_text())
        store.set_dmas(dmas.nodes, dmas.links[["dma", "link_id", "sign"]])
        store.upsert_sensors(registry)
        store.upsert_customers(customers)
        store.add_billing(billing)
    kinds = list(sim.readings)
    imports = {}
    for i, kind in enumerate(kinds):
        report("importing telemetry", i / len(kinds))
        imports[kind] = importer(store, workdir / f"{FILE_OF_KIND[kind]}.csv", kind)
    report("importing telemetry", 1.0)

    truth.update(
        leak_volume_m3=float(sim.leaks["volume_m3"].sum()),
        leaks=sim.leaks.to_dict("records"),
        start=str(start),
        end=str(end),
        mean_demand_m3h=mean_demand,
    )
    summary = {
        "key": cfg.key(),
        "model": "L-TOWN",
        "start": str(start),
        "end": str(end),
        "dmas": dmas.names,
        "sensors": registry.groupby("kind").size().to_dict(),
        "customers": len(customers),
        "leaks": len(sim.leaks),
        "workdir": str(workdir),
        "simulation_s": round(sim.elapsed_s, 2),
    }
    store.set_meta("pilot_truth", truth)
    store.set_meta("pilot", summary)
    return summary

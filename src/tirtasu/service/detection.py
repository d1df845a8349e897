"""Scheduled leak detection on the store's latest data, raising alarms.

Every ``every`` seconds the scheduler reads the last ``days`` days of pressure, flow, level and
smart-meter readings and the stored network model, runs :func:`tirtasu.leaks.detect_leaks` (the
first part of that window is taken as the leak-free training period) and stores each leak not
already alarmed as a new ``open`` alarm, published to MQTT / the webhook. The store is locked
only while reading and writing, never during the (long) detection itself.
"""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd

__all__ = ["DetectionScheduler", "leak_inputs_from_store", "alarms_from_detections", "placements_from_detections"]

log = logging.getLogger("tirtasu.service")


def leak_inputs_from_store(store, start, end):
    """(LeakInputs, model) from the store's readings in [start, end) and its first model.

    Raises
    ------
    ValueError
        No model, no readings, or sensors without a node/link id.
    """
    from tirtasu.leaks.data import LeakInputs
    from tirtasu.network import load_model_text

    registry = store.sensors()
    frames = {}
    for kind in ("pressure", "flow", "level", "demand"):
        reg = registry[registry["kind"] == kind]
        if reg.empty:
            frames[kind] = pd.DataFrame()
            continue
        where = "link_id" if kind == "flow" else "node_id"
        reg = reg[reg[where].notna()]  # detection needs to know where a sensor sits
        wide = store.readings(sensor_ids=list(reg["sensor_id"]), start=start, end=end, wide=True)
        wide = wide.rename(columns=dict(zip(reg["sensor_id"], reg[where])))
        wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index, utc=True))
        frames[kind] = wide
    if all(f.empty for f in frames.values()):
        raise ValueError(f"no readings between {start} and {end}")
    models = store.models()
    if not models:
        raise ValueError("the store holds no network model")
    wn = load_model_text(store.model_text(models[0]), name=models[0])
    return LeakInputs(**frames), wn


def _time(value):
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _id_or_none(value) -> str | None:
    """A pipe or node id, or None where there is none (empty, missing)."""
    return value if isinstance(value, str) and value else None


def _listed(d, link: str | None) -> list[str]:
    """A detection's candidate pipes, best first, without its own pipe."""
    return [c for c in str(d.candidates or "").split(";") if c and c != link]


def _sure_and_search(d) -> tuple[float | None, float | None]:
    """A detection's probability of being within 300 m of its pipe and its search length [km],
    each None when the detector did not say."""

    def known(name):
        v = getattr(d, name, None)
        return float(v) if v is not None and pd.notna(v) else None

    return known("p_within_300m"), known("search_km")


def _where_note(d) -> str:
    """How sure the place is and how much of the mains to survey, when the detector said."""
    p, km = _sure_and_search(d)
    parts = []
    if p is not None:
        parts.append(f"{p * 100:.0f} % likely within 300 m")
    if km is not None:
        parts.append(f"{km:.1f} km of mains hold 90 % of the probability")
    return "; " + ", ".join(parts) if parts else ""


def alarms_from_detections(detections: pd.DataFrame, existing: pd.DataFrame, node_dma: dict, link_nodes: dict) -> list[dict]:
    """New alarms for the detections that no existing alarm covers.

    A detection is already covered when an alarm that is not repaired names its pipe (as the
    best pipe or a candidate), or any alarm was raised for that pipe at that time: re-running
    detection on a sliding window finds the same leak again and must not raise it twice. A leak
    whose best pipe is too uncertain to name (the detector's ``pipe_p_min``) raises an alarm
    without a pipe whose candidates are the pipes to survey around, covered likewise by its best
    candidate (:func:`placements_from_detections` names its pipe once the detector does). A leak
    that could not be placed at all (too few pressure sensors) raises an alarm without a pipe or
    candidates, one while such an alarm is not repaired.
    """
    covered = set()
    raised = set()
    unplaced_open = False  # a leak found from the water balance alone, not yet repaired
    for a in existing.itertuples():
        link = _id_or_none(a.link_id)
        if a.status != "repaired":
            covered.update([link, *a.candidates])
            unplaced_open |= link is None
        raised.add((link, a.detected_at))
    out = []
    for d in detections.itertuples():
        link = _id_or_none(d.link_id)
        detected = _time(d.start_time)
        if (link, detected) in raised:
            continue
        listed = _listed(d, link)
        zone = link is None and bool(listed)  # placed too uncertainly to name a pipe: an area to survey
        if zone:
            if listed[0] in covered:
                continue
        elif link is None:
            # too few pressure sensors to place it: still a leak to report, one until repaired
            if unplaced_open:
                continue
            unplaced_open = True
        elif link in covered:
            continue
        candidates = ([link] if link else []) + listed
        node = _id_or_none(d.node_id)
        dma = node_dma.get(node) if node else None
        if dma is None:
            where = link or (listed[0] if zone else None)
            dma = next((node_dma[n] for n in link_nodes.get(where, ()) if n in node_dma), None)
        if link:
            note = f"near {link}{_where_note(d)}"
        elif zone:
            note = _zone_note(d, listed)
        else:
            note = "found from the water balance; too few pressure sensors to place it"
        out.append(
            {
                "link_id": link,
                "candidates": candidates,
                "start_time": _time(d.estimated_start) or detected,
                "detected_at": detected,
                "flow_m3h": float(d.leak_flow_m3h),
                "dma": dma,
                "history": [
                    {
                        "at": pd.Timestamp.now(tz="UTC").isoformat(),
                        "by": "detector",
                        "action": "raised",
                        "note": f"leak of {float(d.leak_flow_m3h):.2f} m³/h {note}",
                    }
                ],
            }
        )
        covered.update(candidates)
    return out


def _zone_note(d, listed: list) -> str:
    """Where to survey for a leak whose pipe is too uncertain to name."""
    p, km = _sure_and_search(d)
    shown = ", ".join(listed[:5]) + (" …" if len(listed) > 5 else "")
    area = f"the {km:.1f} km of mains" if km is not None else "the mains"
    sure = f"{p * 100:.0f} % likely within 300 m of its best pipe; " if p is not None else ""
    return f"whose place is uncertain ({sure}no pipe named yet): survey {area} around {shown}"


def placements_from_detections(detections: pd.DataFrame, existing: pd.DataFrame) -> list[dict]:
    """Pipes named for alarms that were raised without one (a place too uncertain to name).

    The detector localizes such a leak again as evidence comes in and writes a row naming its
    pipe once the pipe is likely enough, with the leak's onset as before. An alarm without a
    pipe that is not repaired, whose candidates hold that pipe, raised before that row, with an
    onset within a day of the row's (the same leak, seen by a run on a later window): it gets
    the pipe, and keeps its candidates after the row's.

    Returns
    -------
    list of dict
        ``alarm_id``, ``link_id``, ``candidates`` (the named pipe first, then the row's next best
        pipes) and ``note``, one per alarm (the latest row naming a pipe for it).
    """
    waiting = [
        a for a in existing.itertuples()
        if a.status != "repaired" and _id_or_none(a.link_id) is None and len(a.candidates or [])
    ]
    out: dict[int, dict] = {}
    for d in detections.itertuples():
        link = _id_or_none(d.link_id)
        detected = _time(d.start_time)
        if link is None:
            continue
        onset = _time(getattr(d, "estimated_start", None))
        for a in waiting:
            raised_at, alarm_onset = _time(a.detected_at), _time(getattr(a, "start_time", None))
            if link not in a.candidates or (raised_at is not None and detected is not None and detected <= raised_at):
                continue
            if onset is not None and alarm_onset is not None and abs(onset - alarm_onset) > pd.Timedelta(days=1):
                continue
            out[int(a.alarm_id)] = {
                "alarm_id": int(a.alarm_id),
                "link_id": link,
                "candidates": list(dict.fromkeys([link, *_listed(d, link), *a.candidates])),
                "note": f"placed near {link}{_where_note(d)}",
            }
    return list(out.values())


class DetectionScheduler:
    """Runs leak detection every ``every`` seconds in a background thread.

    Parameters
    ----------
    state : tirtasu.service.app.ServiceState
        The app's store, its lock and publisher.
    every : float
        Seconds between runs (the first run starts ``every`` seconds after :meth:`start`).
    days : float
        Length of the window of data read at each run [days], ending at the latest reading.
    """

    def __init__(self, state, every: float, days: float = 28.0):
        self.state, self.every, self.days = state, float(every), float(days)
        self.last_run: pd.Timestamp | None = None
        self.last_error: str | None = None
        self.last_new: list[int] = []
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tirtasu-detection", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()

    def _window_end(self, store) -> pd.Timestamp | None:
        """The latest reading's time: now for a live store, else the end of its history."""
        now = pd.Timestamp.now(tz="UTC")
        flows = store.sensors(kind="flow")
        if len(flows):
            recent = store.readings(sensor_ids=list(flows["sensor_id"]), start=now - pd.Timedelta(hours=6), end=now)
            if len(recent):
                return now
        summary = store.readings_summary()
        last = summary["last"].dropna()
        return None if last.empty else pd.Timestamp(last.max()) + pd.Timedelta(seconds=1)

    def run_once(self) -> list[int]:
        """One detection run; returns the ids of the alarms raised (errors are kept, not raised)."""
        from tirtasu.leaks import DetectConfig, detect_leaks

        t0 = time.perf_counter()
        state = self.state
        try:
            with state.lock:
                end = self._window_end(state.store)
                if end is None:
                    raise ValueError("no readings in the store")
                start = end - pd.Timedelta(days=self.days)
                inputs, wn = leak_inputs_from_store(state.store, start, end)
                zone = state.store.meta("timezone")  # the clock the model's patterns run on
            report = detect_leaks(wn, inputs, config=DetectConfig(model_timezone=zone))
            link_nodes = {name: (link.start_node_name, link.end_node_name) for name, link in wn.links()}
            new_ids = []
            with state.lock:
                node_dma = dict(zip(*[state.store.dma_nodes()[c] for c in ("node_id", "dma")]))
                existing = state.store.alarms()
                placed = []
                for change in placements_from_detections(report.detections, existing):
                    event = {"at": pd.Timestamp.now(tz="UTC").isoformat(), "by": "detector", "action": "placed",
                             "note": change["note"]}
                    if state.store.update_alarm(change["alarm_id"], {"link_id": change["link_id"], "candidates": change["candidates"]}, event):
                        placed.append(change["alarm_id"])
                if placed:
                    existing = state.store.alarms()
                for alarm in alarms_from_detections(report.detections, existing, node_dma, link_nodes):
                    alarm_id = state.store.put_alarm(alarm)
                    new_ids.append(alarm_id)
            from tirtasu.service.app import alarm_json

            for event, ids in (("alarm.placed", placed), ("alarm.raised", new_ids)):
                for alarm_id in ids:
                    with state.lock:
                        stored = state.store.alarms(alarm_id=alarm_id)
                    if len(stored):
                        state.publisher.publish(event, alarm_json(stored.iloc[0]))
            self.last_error = None
            self.last_new = new_ids
            log.info("leak detection: %d new alarm(s) in %.1f s", len(new_ids), time.perf_counter() - t0)
            return new_ids
        except Exception as exc:  # noqa: BLE001 - a failed run is reported in /health, the next one tries again
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("leak detection failed: %s", self.last_error)
            return []
        finally:
            self.runs += 1
            self.last_run = pd.Timestamp.now(tz="UTC")

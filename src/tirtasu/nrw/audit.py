"""Read a water audit from a YAML file.

Example (every volume may be a bare number in ``units`` or a mapping)::

    name: Zone 12, 2024
    period: {start: 2024-01-01, end: 2025-01-01}   # end exclusive
    units: ML                                       # default for every volume below
    currency: IDR
    country_group: developing                       # or developed (WBI band row headlined)
    system_input_volume: {value: 520000, cl95: 2, grade: 7, meter_error_pct: -1.5}
    water_imported: {value: 30, unit: ML/d, cl95: 3}    # optional; a rate × the period
    water_exported: 0
    billed_metered: {value: 265000, cl95: 1, grade: 8}
    billed_unmetered: {value: 12000, cl95: 20, grade: 4}
    unbilled_metered: {value: 1500, cl95: 5}
    unbilled_unmetered: {pct: 1.25, of: water_supplied, cl95: 50}
    unauthorized_consumption: {pct: 3, of: water_supplied, cl95: 50, grade: 3}
    customer_meter_inaccuracies: {pct: 4, cl95: 30, grade: 4}   # meter under-registration
    systematic_data_handling_errors: {pct: 0.25, of: billed_metered, cl95: 50}
    mains_length_km: 12202
    service_connections: 958000
    private_pipe_length_km: 0
    average_pressure_m: 20                          # or {value: 2, unit: bar}
    variable_production_cost: 3500                  # currency per m³
    customer_retail_unit_cost: 7800                 # currency per m³
    annual_operating_cost: 2.9e12                   # currency per year (optional)

``system_input_volume`` may also be a list of sources, each with a ``name`` (and ``imported:
true`` for bought water). ``cl95`` is the ± 95 % confidence limit in percent; ``grade`` the
AWWA-style data validity grade 1–10. ``value: store`` (with ``--store``) takes system input or
billed consumption from the data store for the period (see :mod:`tirtasu.nrw.store_io`);
``customer_meter_inaccuracies: {pct: store}`` takes the meters' under-registration from the
comparison of bills with smart meters (valid only where the smart meters are separate, more
accurate meters).

Every error names the key and its line, e.g. ``audit.yaml, line 9: billed_metered.cl95: must be
a number, got 'two'``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from pathlib import Path

import pandas as pd
import yaml

from tirtasu.nrw.balance import PERCENT_BASES, UNBILLED_PERCENT_BASES, AuditInputs, Percent, Source, Volume
from tirtasu.nrw.volumes import check_unit, to_m3
from tirtasu.units import UnknownUnitError, to_internal

__all__ = ["AuditError", "load_audit", "parse_audit", "TOP_LEVEL_KEYS"]

_VOLUME_ITEMS = (
    "water_exported",
    "billed_metered",
    "billed_unmetered",
    "unbilled_metered",
    "unbilled_unmetered",
    "unauthorized_consumption",
    "customer_meter_inaccuracies",
    "systematic_data_handling_errors",
)
_PERCENT_ALLOWED = (
    "unbilled_unmetered",
    "unauthorized_consumption",
    "customer_meter_inaccuracies",
    "systematic_data_handling_errors",
)
#: what a percentage applies to when the file does not say (AWWA Free Water Audit conventions)
_PERCENT_DEFAULT_BASE = {
    "unbilled_unmetered": "water_supplied",
    "unauthorized_consumption": "water_supplied",
    "customer_meter_inaccuracies": "metered_consumption",
    "systematic_data_handling_errors": "billed_metered",
}
_SCALARS = {
    "mains_length_km": "length",
    "service_connections": "count",
    "private_pipe_length_km": "length",
    "average_pressure_m": "pressure",
    "variable_production_cost": "money",
    "customer_retail_unit_cost": "money",
    "annual_operating_cost": "money",
}
TOP_LEVEL_KEYS = (
    "name",
    "dma",
    "period",
    "units",
    "currency",
    "country_group",
    "system_input_volume",
    "water_imported",
    *_VOLUME_ITEMS,
    *_SCALARS,
)
_LENGTH_KM = {"km": 1.0, "m": 1e-3, "mi": 1.609344, "ft": 0.0003048}


class AuditError(ValueError):
    """A problem in an audit file, with the file, line and key it concerns."""


class _Ctx:
    def __init__(self, source: str, marks: dict):
        self.source = source
        self.marks = marks

    def error(self, path: tuple, message: str) -> AuditError:
        mark = None
        p = path
        while p and mark is None:
            mark = self.marks.get(p)
            p = p[:-1]
        where = self.source
        if mark is not None:
            where += f", line {mark.line + 1}"
        key = ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in path).replace(".[", "[")
        return AuditError(f"{where}: {key + ': ' if key else ''}{message}")


def _marks(node, path=(), out=None) -> dict:
    out = {} if out is None else out
    out[path] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            out[path + (key,)] = k.start_mark
            _marks(v, path + (key,), out)
            out[path + (key,)] = k.start_mark  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _marks(v, path + (i,), out)
    return out


def load_audit(path: str | Path, store=None) -> AuditInputs:
    """Read an audit file.

    Parameters
    ----------
    path : str or Path
    store : tirtasu.store.Store or callable returning one, optional
        Needed only if the file takes volumes from the store (``value: store``); a callable is
        called only then.

    Raises
    ------
    AuditError
        With file, line and key, for YAML syntax errors, unknown keys, bad values and units.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the audit file: {exc.strerror or exc}") from None
    return parse_audit(text, source=str(path), store=store)


def parse_audit(text: str, source: str = "<audit>", store=None) -> AuditInputs:
    """Parse audit YAML text (see :func:`load_audit`)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise AuditError(f"{source}{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise AuditError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise AuditError(f"{source}: an audit file is a mapping of keys (system_input_volume, billed_metered, …)")
    ctx = _Ctx(source, _marks(node))
    return _build(data, ctx, store)


# ---------------------------------------------------------------------------------------------
def _check_keys(ctx, path, mapping, allowed):
    for key in mapping:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; expected one of {', '.join(allowed)}"
            raise ctx.error(path + (key,), f"unknown key {key!r}{hint}")


def _number(ctx, path, raw, lo=None, hi=None, lo_open=False, integer=False) -> float:
    if isinstance(raw, str):  # YAML 1.1 reads 2.9e12 (no sign in the exponent) as text
        try:
            raw = float(raw.strip())
        except ValueError:
            raise ctx.error(path, f"must be a number, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ctx.error(path, f"must be a number, got {raw!r}")
    val = float(raw)
    if not math.isfinite(val):
        raise ctx.error(path, f"must be finite, got {raw!r}")
    if integer and val != int(val):
        raise ctx.error(path, f"must be a whole number, got {raw!r}")
    if lo is not None and (val < lo or (lo_open and val == lo)):
        raise ctx.error(path, f"must be {'>' if lo_open else '≥'} {lo:g}, got {raw!r}")
    if hi is not None and val > hi:
        raise ctx.error(path, f"must be ≤ {hi:g}, got {raw!r}")
    return val


def _cl95(ctx, path, raw):
    if raw is None:
        return None
    return _number(ctx, path, raw, lo=0, hi=1000) / 100.0


def _grade(ctx, path, raw):
    if raw is None:
        return None
    return int(_number(ctx, path, raw, lo=1, hi=10, integer=True))


def _date(ctx, path, raw):
    if isinstance(raw, dt.datetime):
        ts = pd.Timestamp(raw)
    elif isinstance(raw, dt.date):
        ts = pd.Timestamp(raw)
    elif isinstance(raw, str):
        try:
            ts = pd.Timestamp(raw)
        except ValueError:
            raise ctx.error(path, f"not a date: {raw!r} (use YYYY-MM-DD)") from None
    else:
        raise ctx.error(path, f"not a date: {raw!r} (use YYYY-MM-DD)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class _Env:
    """What parsing a volume needs to know beyond the entry itself."""

    def __init__(self, unit, days, start, end, store, dma):
        self.unit, self.days, self.start, self.end, self.store, self.dma = unit, days, start, end, store, dma
        self.store_volumes = None

    def from_store(self, ctx, path, what):
        if callable(self.store):  # a factory: open the store only when the file needs it
            self.store = self.store()
        if self.store is None:
            raise ctx.error(path, "takes its value from the store: run with --store (or pass store=…)")
        if self.start is None or self.end is None:
            raise ctx.error(("period",), "a volume taken from the store needs the period (start, end)")
        if self.store_volumes is None:
            from tirtasu.nrw.store_io import balance_volumes_from_store

            self.store_volumes = balance_volumes_from_store(self.store, self.start, self.end, dma=self.dma)
        vols = self.store_volumes
        if what == "unbilled_metered":
            raise ctx.error(
                path,
                "cannot be taken from the store: nothing in it says which metered use is authorized but "
                "not billed (water measured by a smart meter on a node without an account may just as well "
                "be unauthorized); give the volume of the utility's own metered, unbilled uses",
            )
        if what not in vols:
            raise ctx.error(path, f"the store does not provide {what}; it provides {', '.join(vols)}")
        return vols[what]

    def meter_check(self, ctx, path):
        if callable(self.store):
            self.store = self.store()
        if self.store is None:
            raise ctx.error(path, "takes its value from the store: run with --store (or pass store=…)")
        if self.start is None or self.end is None:
            raise ctx.error(("period",), "a value taken from the store needs the period (start, end)")
        from tirtasu.nrw.store_io import meter_registration_check

        check = meter_registration_check(self.store, self.start, self.end, dma=self.dma)
        if check is None:
            raise ctx.error(
                path,
                "the store cannot check the customer meters: it needs two or more smart-metered nodes whose "
                "accounts are all metered and billed in the period",
            )
        if check.under_registration <= 0:
            raise ctx.error(
                path,
                f"the billing meters registered {100 * (check.ratio - 1):.2f} % more than the smart meters "
                "(no under-registration to take): check the billing periods and the meters, or give pct by hand",
            )
        return check


def _unit(ctx, path, raw):
    if not isinstance(raw, str):
        raise ctx.error(path, f"a unit is a text like m3, ML or m3/day; got {raw!r}")
    try:
        check_unit(raw)
    except ValueError as exc:
        raise ctx.error(path, str(exc)) from None
    return raw


def _volume_value(ctx, path, raw, unit, env: _Env) -> float:
    val = _number(ctx, path, raw, lo=0)
    try:
        return to_m3(val, unit, env.days)
    except ValueError as exc:
        raise ctx.error(path, str(exc)) from None


def _volume(ctx, path, raw, env: _Env, key: str) -> Volume | Percent:
    if not isinstance(raw, dict):
        if raw == "store":
            return _store_volume(ctx, path, {}, env, key)
        return Volume(_volume_value(ctx, path, raw, env.unit, env))
    allowed = ["value", "unit", "cl95", "grade", "note"]
    if key in _PERCENT_ALLOWED:
        allowed += ["pct", "of"]
    _check_keys(ctx, path, raw, allowed)
    cl95 = _cl95(ctx, path + ("cl95",), raw.get("cl95"))
    grade = _grade(ctx, path + ("grade",), raw.get("grade"))
    note = raw.get("note")
    if "pct" in raw and raw["pct"] == "store":
        if key != "customer_meter_inaccuracies":
            raise ctx.error(path + ("pct",), "only customer_meter_inaccuracies can take its percentage from the store")
        if "of" in raw and raw["of"] != "metered_consumption":
            raise ctx.error(path + ("of",), "a percentage from the store is the meters' under-registration: of metered_consumption")
        check = env.meter_check(ctx, path + ("pct",))
        return Percent(
            100 * check.under_registration,
            "metered_consumption",
            cl95=cl95 if cl95 is not None else check.cl95 / check.under_registration,
            grade=grade,
            under_registration=True,
            note=note or check.note,
        )
    if "pct" in raw:
        if "value" in raw:
            raise ctx.error(path, "give either value or pct, not both")
        if "unit" in raw:
            raise ctx.error(path + ("unit",), "a percentage has no unit")
        under = key == "customer_meter_inaccuracies"
        pct = _number(ctx, path + ("pct",), raw["pct"], lo=0, hi=99.99 if under else 100)
        of = raw.get("of", _PERCENT_DEFAULT_BASE[key])
        bases = UNBILLED_PERCENT_BASES if key == "unbilled_unmetered" else PERCENT_BASES
        if of not in bases:
            raise ctx.error(path + ("of",), f"must be one of {', '.join(bases)}; got {of!r}")
        if under and of != "metered_consumption":
            under = False  # a plain share of another consumption
        return Percent(pct, of, cl95=cl95, grade=grade, under_registration=under, note=note)
    if "value" not in raw:
        raise ctx.error(path, "needs a value" + (" or a pct" if key in _PERCENT_ALLOWED else ""))
    if raw["value"] == "store":
        return _store_volume(ctx, path, raw, env, key, cl95, grade)
    unit = _unit(ctx, path + ("unit",), raw["unit"]) if "unit" in raw else env.unit
    return Volume(_volume_value(ctx, path + ("value",), raw["value"], unit, env), cl95, grade, note)


def _store_volume(ctx, path, raw, env, key, cl95=None, grade=None) -> Volume:
    if "unit" in raw:
        raise ctx.error(path + ("unit",), "a volume from the store is in m³; drop the unit")
    got = env.from_store(ctx, path, key)
    return Volume(got.value, cl95, grade, got.note)


def _sources(ctx, raw, env: _Env) -> list[Source]:
    path = ("system_input_volume",)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ctx.error(path, "needs at least one source")
    out = []
    for i, item in enumerate(items):
        p = path + (i,) if isinstance(raw, list) else path
        out.append(_source(ctx, p, item, env, default_name=f"source {i + 1}" if isinstance(raw, list) else "system input"))
    return out


def _source(ctx, path, item, env, default_name, imported=False) -> Source:
    if not isinstance(item, dict):
        if item == "store":
            item = {"value": "store"}
        else:
            return Source(default_name, _volume_value(ctx, path, item, env.unit, env), imported=imported)
    _check_keys(ctx, path, item, ["name", "value", "unit", "cl95", "grade", "meter_error_pct", "imported", "note"])
    if "value" not in item:
        raise ctx.error(path, "needs a value")
    name = str(item.get("name", default_name))
    err = _number(ctx, path + ("meter_error_pct",), item.get("meter_error_pct", 0.0), lo=-99, hi=1000)
    cl95 = _cl95(ctx, path + ("cl95",), item.get("cl95"))
    grade = _grade(ctx, path + ("grade",), item.get("grade"))
    imp = item.get("imported", imported)
    if not isinstance(imp, bool):
        raise ctx.error(path + ("imported",), f"must be true or false, got {imp!r}")
    if item["value"] == "store":
        got = env.from_store(ctx, path, "system_input_volume")
        return Source(name, got.value, err, cl95, grade, imp, note=got.note)
    unit = _unit(ctx, path + ("unit",), item["unit"]) if "unit" in item else env.unit
    measured = _volume_value(ctx, path + ("value",), item["value"], unit, env)
    return Source(name, measured, err, cl95, grade, imp, note=item.get("note"))


def _scalar(ctx, key, raw, grades: dict):
    path = (key,)
    unit = None
    if isinstance(raw, dict):
        _check_keys(ctx, path, raw, ["value", "unit", "grade", "note"])
        if "value" not in raw:
            raise ctx.error(path, "needs a value")
        if raw.get("grade") is not None:
            grades[key] = _grade(ctx, path + ("grade",), raw["grade"])
        unit = raw.get("unit")
        path, raw = path + ("value",), raw["value"]
    kind = _SCALARS[key]
    if kind == "count":
        return _number(ctx, path, raw, lo=0, lo_open=True)
    val = _number(ctx, path, raw, lo=0)
    if unit is None:
        return val
    upath = (key, "unit")
    if kind == "length":
        factor = _LENGTH_KM.get(str(unit).strip().lower())
        if factor is None:
            raise ctx.error(upath, f"unknown length unit {unit!r}; use km, m, mi or ft")
        return val * factor
    if kind == "pressure":
        try:
            return float(to_internal(val, str(unit), "pressure"))
        except UnknownUnitError as exc:
            raise ctx.error(upath, str(exc)) from None
    raise ctx.error(upath, "takes no unit (money is in the audit's currency)")


def _build(data: dict, ctx: _Ctx, store) -> AuditInputs:
    _check_keys(ctx, (), data, list(TOP_LEVEL_KEYS))
    notes = []
    start = end = None
    if "period" in data:
        per = data["period"]
        if not isinstance(per, dict):
            raise ctx.error(("period",), "must be a mapping {start: YYYY-MM-DD, end: YYYY-MM-DD}")
        _check_keys(ctx, ("period",), per, ["start", "end"])
        for k in ("start", "end"):
            if k not in per:
                raise ctx.error(("period",), f"needs {k}")
        start = _date(ctx, ("period", "start"), per["start"])
        end = _date(ctx, ("period", "end"), per["end"])
        if end <= start:
            raise ctx.error(("period", "end"), f"must be after start ({start.date()})")
        if (end + pd.Timedelta(days=1)).day == 1 and end.hour == 0 and start.day == 1:
            notes.append(
                f"period end {end.date()} is exclusive: the audit covers {start.date()} up to, not "
                f"including, {end.date()}; write {(end + pd.Timedelta(days=1)).date()} to include it"
            )
    days = None if start is None else (end - start) / pd.Timedelta(days=1)
    unit = _unit(ctx, ("units",), data["units"]) if "units" in data else "m3"

    dma = data.get("dma")
    if dma is not None:
        dma = str(dma)
    env = _Env(unit, days, start, end, store, dma)

    if "system_input_volume" not in data:
        raise ctx.error((), "missing system_input_volume")
    if "billed_metered" not in data:
        raise ctx.error((), "missing billed_metered")
    sources = _sources(ctx, data["system_input_volume"], env)
    if "water_imported" in data:
        sources.append(_source(ctx, ("water_imported",), data["water_imported"], env, "water imported", imported=True))

    kwargs = {}
    for key in _VOLUME_ITEMS:
        if key in data and data[key] is not None:
            kwargs[key] = _volume(ctx, (key,), data[key], env, key)
    grades = {}
    for key in _SCALARS:
        if key in data and data[key] is not None:
            kwargs[key] = _scalar(ctx, key, data[key], grades)

    group = data.get("country_group", "developing")
    if group not in ("developing", "developed"):
        raise ctx.error(("country_group",), f"must be 'developing' or 'developed', got {group!r}")
    for k in ("name", "currency"):
        if k in data and not isinstance(data[k], (str, int, float)):
            raise ctx.error((k,), f"must be a text, got {data[k]!r}")
    return AuditInputs(
        sources=sources,
        start=start,
        end=end,
        currency=str(data.get("currency", "")),
        country_group=group,
        name=str(data.get("name", "")),
        dma=dma,
        grades=grades,
        notes=notes,
        **kwargs,
    )

"""SenML (RFC 8428) and plain ``{"t": …, "v": …}`` payloads, parsed into resolved records.

Only the JSON representation is read (RFC 8428 §5). A *pack* is a JSON array of records; base
fields (``bn``, ``bt``, ``bu``, ``bv``, ``bver``) apply to the record that carries them and to
every later record until overridden (§4.1). Per record:

- name = ``bn`` + ``n`` (§4.5.1); it must be non-empty unless a default name is given (the sensor
  id of the MQTT topic), and use only ``A-Z a-z 0-9 - : . / _``, starting with a letter or digit;
- time = ``bt`` + ``t`` in seconds since 1970-01-01 UTC; a result below 2**28 is relative to now
  (§4.5.3), so ``t: -60`` means a minute ago and a missing time means now;
- value = ``bv`` + ``v`` (§4.5.2); tirtasu stores numbers only, so ``vs``/``vb``/``vd``/``s``
  without ``v`` are refused;
- unit = ``u``, else ``bu``, else none (the caller then uses the sensor registry's unit);
- ``ut`` (update time) is accepted and ignored; fields ending in ``_`` must be understood
  (§4.4) and refuse the record; other unknown fields are ignored; ``bver`` above 10 refuses it.

A single JSON object is read as a pack of one record, which covers the plain form
``{"t": 1700000000.5, "v": 42.1}`` (``t`` may also be an ISO 8601 string with a zone; ``u``
optional). Its name then comes from the topic.

Nothing here raises anything but :class:`SenMLError` (for a payload refused as a whole);
problems with single records come back as :class:`Rejected` entries so that the good records of
a pack are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time as _time
from dataclasses import dataclass

__all__ = ["SenMLError", "Record", "Rejected", "parse", "RELATIVE_LIMIT", "SENML_VERSION"]

#: resolved times below this (2**28 s, 1978-07-04) are relative to now (RFC 8428 §4.5.3)
RELATIVE_LIMIT = 2**28
#: the SenML version this parser implements (RFC 8428 §4.4: default bver is 10)
SENML_VERSION = 10

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*\Z")
_BASE = ("bn", "bt", "bu", "bv", "bs", "bver")
_OTHER_VALUES = ("vs", "vb", "vd", "s")
# largest time accepted as a number at all (year ~ 5138); later ones are refused as bad time
_MAX_SECONDS = 1e11


class SenMLError(ValueError):
    """A payload refused as a whole: not JSON, not a SenML pack or record.

    Attributes
    ----------
    code : str
        A short reason code (``not_json``, ``not_senml``, ``empty``).
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Record:
    """A resolved SenML record.

    Attributes
    ----------
    index : int
        Position in the pack (0 for a single object).
    name : str or None
        Base name + name; None when both are absent (the caller uses the topic's sensor id).
    time : float
        Seconds since 1970-01-01 UTC, relative times already resolved.
    value : float
        Base value + value, as sent (before unit conversion); may be non-finite, which the
        validation refuses with its own reason.
    unit : str or None
        ``u`` or ``bu`` as sent.
    raw : dict
        The record as received (without inherited base fields), for the quarantine.
    """

    index: int
    name: str | None
    time: float
    value: float
    unit: str | None
    raw: dict


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record of a pack that cannot be read; the others of the pack are unaffected.

    Attributes
    ----------
    index : int
    code : str
        Short reason code (``invalid_record``, ``bad_name``, ``bad_time``, ``no_value``, …).
    reason : str
        What is wrong, for people.
    raw : object
        The record as received.
    name : str or None
        The resolved name, when it could be resolved.
    """

    index: int
    code: str
    reason: str
    raw: object
    name: str | None = None


def _number(value) -> bool:
    # JSON true/false arrive as bool, a subclass of int: not a number here
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range: as infinite as it gets
        return math.inf if value > 0 else -math.inf


def _iso_seconds(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 time with a zone; None if unreadable or naive."""
    if len(text) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except (ValueError, TypeError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def parse(payload: bytes | str, *, now: float | None = None) -> list[Record | Rejected]:
    """Parse a SenML JSON pack (or a single record / plain ``{"t", "v"}`` object).

    Parameters
    ----------
    payload : bytes or str
        UTF-8 JSON text.
    now : float, optional
        Seconds since the epoch that relative times count from (default: the clock).

    Returns
    -------
    list of Record or Rejected
        One entry per record, in pack order.

    Raises
    ------
    SenMLError
        If the payload is not UTF-8 JSON, not an array or object, an empty pack, or a pack of
        something else than objects. Nothing else is raised for any input.
    """
    now = _time.time() if now is None else float(now)
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SenMLError("not_json", f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    elif isinstance(payload, str):
        text = payload
    else:
        raise SenMLError("not_json", f"payload must be bytes or text, not {type(payload).__name__}")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise SenMLError("not_json", "payload is not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and lone surrogates some inputs produce
        raise SenMLError("not_json", f"payload is not JSON: {exc}") from None
    if isinstance(doc, dict):
        doc = [doc]
    elif not isinstance(doc, list):
        raise SenMLError("not_senml", f"a SenML pack is a JSON array of records; got a JSON {type(doc).__name__}")
    if not doc:
        raise SenMLError("empty", "empty SenML pack: no records")
    if not all(isinstance(r, dict) for r in doc):
        raise SenMLError("not_senml", "a SenML pack is an array of JSON objects (records)")

    out: list[Record | Rejected] = []
    bn, bt, bu, bv = "", 0.0, None, 0.0
    base_ok = True  # a bad base field spoils the records that would inherit it
    for i, rec in enumerate(doc):
        # base fields first: they apply to this record too (RFC 8428 §4.1)
        if any(k in rec for k in _BASE):
            base_ok, problem = True, None
            if "bn" in rec:
                if isinstance(rec["bn"], str):
                    bn = rec["bn"]
                else:
                    problem = "bn (base name) must be a string"
            if "bt" in rec:
                if _number(rec["bt"]) and math.isfinite(_as_float(rec["bt"])):
                    bt = _as_float(rec["bt"])
                else:
                    problem = "bt (base time) must be a finite number"
            if "bu" in rec:
                if isinstance(rec["bu"], str) or rec["bu"] is None:
                    bu = rec["bu"] or None
                else:
                    problem = "bu (base unit) must be a string"
            if "bv" in rec:
                if _number(rec["bv"]):
                    bv = _as_float(rec["bv"])
                else:
                    problem = "bv (base value) must be a number"
            if "bver" in rec:
                ver = rec["bver"]
                if not (_number(ver) and math.isfinite(_as_float(ver)) and float(ver).is_integer()):
                    problem = "bver must be an integer"
                elif ver > SENML_VERSION:
                    problem = f"SenML version {ver} is newer than this reader knows ({SENML_VERSION})"
            if problem:
                base_ok = False
                out.append(Rejected(i, "invalid_record", problem, rec))
                continue
        if not base_ok:
            out.append(Rejected(i, "invalid_record", "inherits an invalid base field from an earlier record", rec))
            continue
        out.append(_resolve(i, rec, bn, bt, bu, bv, now))
    return out


def _resolve(i: int, rec: dict, bn: str, bt: float, bu, bv: float, now: float) -> Record | Rejected:
    must = [k for k in rec if isinstance(k, str) and k.endswith("_")]
    if must:
        return Rejected(i, "invalid_record", f"must-understand field(s) not supported: {', '.join(sorted(must))}", rec)
    n = rec.get("n", "")
    if not isinstance(n, str):
        return Rejected(i, "invalid_record", "n (name) must be a string", rec)
    name = bn + n
    if name:
        if not _NAME.match(name):
            return Rejected(
                i, "bad_name", f"invalid SenML name {name[:80]!r}: letters, digits and - : . / _ only, "
                "starting with a letter or digit", rec
            )
    else:
        name = None
    if "v" not in rec:
        what = next((k for k in _OTHER_VALUES if k in rec), None)
        reason = f"only numeric values (v) are stored; got {what}" if what else "no value (v)"
        return Rejected(i, "no_value", reason, rec, name)
    v = rec["v"]
    if not _number(v):
        return Rejected(i, "invalid_record", f"v (value) must be a number, got {type(v).__name__}", rec, name)
    unit = rec.get("u", bu)
    if unit is not None and not isinstance(unit, str):
        return Rejected(i, "invalid_record", "u (unit) must be a string", rec, name)
    t = rec.get("t", 0)
    if isinstance(t, str):
        seconds = _iso_seconds(t)
        if seconds is None:
            return Rejected(i, "bad_time", f"t must be seconds since 1970 or ISO 8601 with a zone, got {t[:40]!r}", rec, name)
        t = seconds + bt
    elif _number(t):
        t = _as_float(t) + bt
    else:
        return Rejected(i, "bad_time", "t (time) must be a number", rec, name)
    if not math.isfinite(t) or abs(t) > _MAX_SECONDS:
        return Rejected(i, "bad_time", f"time out of range: {t!r}", rec, name)
    if t < RELATIVE_LIMIT:  # RFC 8428 §4.5.3: relative to now
        t = now + t
    return Record(i, name, t, bv + _as_float(v), unit or None, rec)

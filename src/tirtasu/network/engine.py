"""Step-by-step access to the EPANET 2.2 engine.

WNTR ships EPANET's shared library and opens projects with it; this module keeps one open
project and calls the toolkit directly (through ctypes) for what a time-stepping simulation
needs: read values each step, change emitters and patterns between steps. Values are in the
units of the model file, so open files written in CMH (flow m³/h, pressure m).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from wntr.epanet import toolkit

__all__ = ["Engine", "EngineError"]

# EPANET 2.2 toolkit codes (epanet2_enums.h)
EN_NODECOUNT, EN_TANKCOUNT, EN_LINKCOUNT, EN_PATCOUNT = 0, 1, 2, 3
EN_DURATION, EN_HYDSTEP, EN_PATTERNSTEP, EN_PATTERNSTART, EN_REPORTSTEP = 0, 1, 3, 4, 5
EN_BASEDEMAND, EN_EMITTER, EN_DEMAND, EN_HEAD, EN_PRESSURE = 1, 3, 9, 10, 11
EN_TANKVOLUME = 24
EN_FLOW = 8
EN_ACCURACY, EN_FLOWCHANGE = 1, 6
EN_TRIALS, EN_DEMANDMULT = 0, 4  # options: maximum trials, global demand multiplier
EN_TANKLEVEL, EN_MINLEVEL, EN_MAXLEVEL = 8, 20, 21  # node: a tank's initial, lowest and highest water level
EN_ROUGHNESS, EN_INITSTATUS = 2, 4  # link: roughness coefficient, initial status (0 closed, 1 open)


class EngineError(RuntimeError):
    pass


class Engine:
    """An open EPANET project, for stepping through an extended-period hydraulic run.

    Use as a context manager; ``for t in engine.steps(): ...`` yields each hydraulic time
    [s] after it is solved.
    """

    def __init__(self, inp_path: str | Path, report_path: str | Path | None = None):
        self._en = toolkit.ENepanet(version=2.2)
        rpt = str(report_path) if report_path else str(Path(inp_path).with_suffix(".rpt"))
        self._en.ENopen(str(inp_path), rpt, "")
        self.lib = self._en.ENlib
        self.ph = self._en._project
        self._dbl = ctypes.c_double()
        self._int = ctypes.c_int()
        self._long = ctypes.c_long()

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._en is not None:
            self._en.ENclose()
            self._en = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, code: int, what: str) -> None:
        if code > 100:
            raise EngineError(f"EPANET error {code} while {what}")

    # -- lookup ----------------------------------------------------------------------------
    def node_index(self, node_id: str) -> int:
        self._check(self.lib.EN_getnodeindex(self.ph, node_id.encode(), ctypes.byref(self._int)), f"finding node {node_id!r}")
        return self._int.value

    def link_index(self, link_id: str) -> int:
        self._check(self.lib.EN_getlinkindex(self.ph, link_id.encode(), ctypes.byref(self._int)), f"finding link {link_id!r}")
        return self._int.value

    def count(self, code: int) -> int:
        self._check(self.lib.EN_getcount(self.ph, code, ctypes.byref(self._int)), "counting")
        return self._int.value

    # -- times -----------------------------------------------------------------------------
    def get_time(self, code: int) -> int:
        self._check(self.lib.EN_gettimeparam(self.ph, code, ctypes.byref(self._long)), "reading a time parameter")
        return self._long.value

    def set_time(self, code: int, seconds: int) -> None:
        self._check(self.lib.EN_settimeparam(self.ph, code, ctypes.c_long(int(seconds))), "setting a time parameter")

    def get_option(self, code: int) -> float:
        self._check(self.lib.EN_getoption(self.ph, code, ctypes.byref(self._dbl)), "reading an option")
        return self._dbl.value

    def set_option(self, code: int, value: float) -> None:
        self._check(self.lib.EN_setoption(self.ph, code, ctypes.c_double(value)), "setting an option")

    # -- values ----------------------------------------------------------------------------
    def node_value(self, index: int, code: int) -> float:
        self.lib.EN_getnodevalue(self.ph, index, code, ctypes.byref(self._dbl))
        return self._dbl.value

    def link_value(self, index: int, code: int) -> float:
        self.lib.EN_getlinkvalue(self.ph, index, code, ctypes.byref(self._dbl))
        return self._dbl.value

    def set_node_value(self, index: int, code: int, value: float) -> None:
        self._check(self.lib.EN_setnodevalue(self.ph, index, code, ctypes.c_double(value)), "setting a node value")

    def set_tank_level(self, index: int, level: float, snap: float = 0.01) -> None:
        """Set a tank's water level for the next run, held within its range.

        A level within ``snap`` of the tank's lowest or highest is set exactly there, so that the
        engine treats the tank as empty or full (a full tank takes no more water: set 1 cm short,
        it would take what the network pushes into it).
        """
        lo, hi = self.node_value(index, EN_MINLEVEL), self.node_value(index, EN_MAXLEVEL)
        level = float(level)
        if level >= hi - snap:
            level = hi
        elif level <= lo + snap:
            level = lo
        self.set_node_value(index, EN_TANKLEVEL, level)

    def set_link_value(self, index: int, code: int, value: float) -> None:
        self._check(self.lib.EN_setlinkvalue(self.ph, index, code, ctypes.c_double(value)), "setting a link value")

    def reader(self, nodes: list[tuple[int, int]], links: list[tuple[int, int]]):
        """A function that fills an array with the listed (index, code) node then link values.

        Binding the ctypes calls once keeps the per-step cost to the toolkit calls themselves.
        """
        get_node, get_link, ph, dbl = self.lib.EN_getnodevalue, self.lib.EN_getlinkvalue, self.ph, self._dbl
        ref = ctypes.byref(dbl)
        n_nodes = len(nodes)

        def read(out: np.ndarray) -> None:
            for k, (i, code) in enumerate(nodes):
                get_node(ph, i, code, ref)
                out[k] = dbl.value
            for k, (i, code) in enumerate(links):
                get_link(ph, i, code, ref)
                out[n_nodes + k] = dbl.value

        return read

    # -- patterns and demands --------------------------------------------------------------
    def pattern_values(self, index: int) -> np.ndarray:
        self._check(self.lib.EN_getpatternlen(self.ph, index, ctypes.byref(self._int)), "reading a pattern")
        values = np.empty(self._int.value)
        for k in range(len(values)):
            self.lib.EN_getpatternvalue(self.ph, index, k + 1, ctypes.byref(self._dbl))
            values[k] = self._dbl.value
        return values

    def pattern_id(self, index: int) -> str:
        buf = ctypes.create_string_buffer(64)
        self._check(self.lib.EN_getpatternid(self.ph, index, buf), "reading a pattern id")
        return buf.value.decode()

    def set_pattern(self, index: int, values: np.ndarray) -> None:
        arr = np.ascontiguousarray(values, dtype=np.float64)
        self._check(
            self.lib.EN_setpattern(self.ph, index, arr.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), len(arr)),
            "setting a pattern",
        )

    def add_pattern(self, pattern_id: str, values: np.ndarray) -> int:
        self._check(self.lib.EN_addpattern(self.ph, pattern_id.encode()), f"adding pattern {pattern_id!r}")
        self._check(self.lib.EN_getpatternindex(self.ph, pattern_id.encode(), ctypes.byref(self._int)), "finding a pattern")
        index = self._int.value
        self.set_pattern(index, values)
        return index

    def demands(self, node_index: int) -> list[tuple[float, int]]:
        """(base demand, pattern index) of each demand category of a junction."""
        self._check(self.lib.EN_getnumdemands(self.ph, node_index, ctypes.byref(self._int)), "counting demands")
        out = []
        for d in range(1, self._int.value + 1):
            pattern = ctypes.c_int()
            self.lib.EN_getbasedemand(self.ph, node_index, d, ctypes.byref(self._dbl))
            self.lib.EN_getdemandpattern(self.ph, node_index, d, ctypes.byref(pattern))
            out.append((self._dbl.value, pattern.value))
        return out

    def set_demand_pattern(self, node_index: int, demand_index: int, pattern_index: int) -> None:
        self._check(
            self.lib.EN_setdemandpattern(self.ph, node_index, demand_index, pattern_index), "setting a demand pattern"
        )

    # -- running ---------------------------------------------------------------------------
    def steps(self) -> Iterator[int]:
        """Solve each hydraulic time step in turn, yielding its time [s]."""
        lib, ph = self.lib, self.ph
        t, tstep = ctypes.c_long(), ctypes.c_long()
        self._check(lib.EN_openH(ph), "opening hydraulics")
        self._check(lib.EN_initH(ph, 0), "initialising hydraulics")
        try:
            while True:
                code = lib.EN_runH(ph, ctypes.byref(t))
                self._check(code, f"solving hydraulics at t = {t.value} s")
                yield t.value
                lib.EN_nextH(ph, ctypes.byref(tstep))
                if tstep.value <= 0:
                    break
        finally:
            lib.EN_closeH(ph)

    def for_steady_states(self, tank_levels: dict[str, float] | None = None, link_status: dict[str, bool] | None = None) -> None:
        """Set the project up for single steady states: no duration, tight accuracy, tanks at
        ``tank_levels`` [m] and links held open (True) or closed (False)."""
        self.set_time(EN_DURATION, 0)
        self.set_option(EN_ACCURACY, 1e-6)
        try:
            self.set_option(EN_TRIALS, 200)
        except EngineError:  # pragma: no cover - older engines
            pass
        for name, level in (tank_levels or {}).items():
            self.set_tank_level(self.node_index(name), level)
        for name, is_open in (link_status or {}).items():
            self.set_link_value(self.link_index(name), EN_INITSTATUS, 1.0 if is_open else 0.0)

    @contextmanager
    def hydraulics(self):
        """Hydraulics opened for the block (``EN_openH``), closed after it whatever happens."""
        self._check(self.lib.EN_openH(self.ph), "opening hydraulics")
        try:
            yield self
        finally:
            self.lib.EN_closeH(self.ph)

    def steady_state(self) -> None:
        """Solve the hydraulics at the start time (inside :meth:`hydraulics`)."""
        t = ctypes.c_long()
        self._check(self.lib.EN_initH(self.ph, 0), "initialising hydraulics")
        self._check(self.lib.EN_runH(self.ph, ctypes.byref(t)), "solving a steady state")

    def junction_outflow(self, junction_idx: list[int], multiplier: float) -> float:
        """Total outflow of the junctions [model flow units] in a steady state with the demand
        multiplier set to ``multiplier`` (which stays set)."""
        self.set_option(EN_DEMANDMULT, multiplier)
        with self.hydraulics():
            self.steady_state()
            return sum(self.node_value(i, EN_DEMAND) for i in junction_idx)

    def demand_multiplier_for(self, junction_idx: list[int], target: float | None, default: float) -> float | None:
        """The demand multiplier that makes the junctions draw ``target`` in a steady state.

        ``default`` (the model's own multiplier) when there is no usable target. A junction's
        emitter (modelled leakage) is part of its outflow and is not scaled by the multiplier, so
        the demands alone are the difference between the outflow at 1 and at 0. None when those
        probes have no hydraulic solution (the state without demand can have none with the
        tank levels and pump states set, EPANET error 110): the caller keeps the model's demands.
        """
        if target is None or not np.isfinite(target) or target <= 0:
            return default
        try:
            emitted = self.junction_outflow(junction_idx, 0.0)
            demands_only = self.junction_outflow(junction_idx, 1.0) - emitted
        except EngineError:
            return None
        if demands_only <= 1e-9 or target <= emitted:
            return default
        return (float(target) - emitted) / demands_only

    def solve_all(self) -> None:
        """Run the whole simulation at once (EPANET's own ENsolveH), for timing comparisons."""
        self._check(self.lib.EN_solveH(self.ph), "solving hydraulics")

"""Synthetic field data with known truth: a "true" network, leaks, sensors and their faults.

Utilities never know where all their leaks are; tirtasu needs that truth to test and
benchmark its analyses. :func:`simulate` runs a :class:`Scenario` with the EPANET engine.
"""

from tirtasu.simulator.run import SimulationResult, simulate, write_wide_csv
from tirtasu.simulator.scenario import (
    Leak,
    Scenario,
    SensorFault,
    SensorLayout,
    default_layout,
    layout_from_model_tags,
    random_faults,
    random_leaks,
    spread_pressure_sensors,
)

__all__ = [
    "Leak",
    "Scenario",
    "SensorFault",
    "SensorLayout",
    "SimulationResult",
    "default_layout",
    "layout_from_model_tags",
    "random_faults",
    "random_leaks",
    "simulate",
    "spread_pressure_sensors",
    "write_wide_csv",
]

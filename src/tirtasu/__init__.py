"""tirtasu: IoT telemetry, leak detection and non-revenue water for city water utilities.

Subpackages, in the direction data flows:

- :mod:`tirtasu.network` – EPANET models: load, summarise, DMAs, hydraulics, GeoJSON
- :mod:`tirtasu.telemetry` – sensor registry and import of SCADA/AMR exports
- :mod:`tirtasu.store` – one storage interface, DuckDB (embedded default) backend
- :mod:`tirtasu.simulator` – synthetic field data with known leaks (ground truth)
- :mod:`tirtasu.pilot` – the simulated pilot utility on L-Town used by ``tirtasu demo``
- :mod:`tirtasu.cli` – the ``tirtasu`` command

Internal units everywhere: head and pressure [m], flow [m³/h], customer demand [L/h], UTC time.
"""

__version__ = "0.1.0"

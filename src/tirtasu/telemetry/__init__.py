"""Sensors and their readings: the registry, and import of SCADA and AMR exports."""

from tirtasu.telemetry.sensors import (
    KIND_PREFIX,
    SENSOR_COLUMNS,
    WIDE_FILE_KINDS,
    make_registry,
    sensor_id_for,
)

__all__ = ["KIND_PREFIX", "SENSOR_COLUMNS", "WIDE_FILE_KINDS", "make_registry", "sensor_id_for"]

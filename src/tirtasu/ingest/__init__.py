"""Live ingestion of readings: SenML (RFC 8428) over MQTT and HTTP, validated, with a quarantine.

- :mod:`tirtasu.ingest.senml` parses SenML JSON packs and plain ``{"t", "v"}`` objects;
- :mod:`tirtasu.ingest.validate` checks records against the sensor registry, converts units and
  writes readings and refusals (:func:`ingest_payload`, used by ``POST /api/v1/readings``);
- :mod:`tirtasu.ingest.mqtt` is the MQTT ingester behind ``tirtasu ingest mqtt``.

See docs/ingest.md.
"""

from tirtasu.ingest.senml import SenMLError
from tirtasu.ingest.validate import MAX_PAYLOAD_BYTES, IngestResult, SensorRegistry, ingest_payload

__all__ = ["MAX_PAYLOAD_BYTES", "IngestResult", "SenMLError", "SensorRegistry", "ingest_payload"]

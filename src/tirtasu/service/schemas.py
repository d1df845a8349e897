"""Request and response models of the API (pydantic): what is validated and what is documented.

Every text a client can send is bounded in length and refused with control characters in it
(422, before any query runs); values only ever reach SQL as parameters.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from tirtasu.units import KINDS

HOWS = ("mean", "min", "max", "sum", "first", "last", "count")
#: a pandas offset the store can bucket by: seconds, minutes, hours, days, weeks or month starts
RESAMPLE_PATTERN = r"^[1-9][0-9]{0,3}(s|min|h|D|W|MS)$"

Text = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Note = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
Kind = Literal[KINDS]  # type: ignore[valid-type]
Role = Literal["viewer", "operator", "admin"]
Status = Literal["open", "acknowledged", "repaired"]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Naive times are UTC; aware ones are converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _iso_only(value):
    """Refuse bare numbers: "-1" or "1700000000" would be read as Unix times (seconds? ms?)."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()):
        raise ValueError("give an ISO 8601 time such as 2025-09-01T00:00:00Z, not a number")
    return value


UTCTime = Annotated[dt.datetime, BeforeValidator(_iso_only), AfterValidator(_utc)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Period(_Query):
    from_: UTCTime | None = Field(None, alias="from", description="First time (ISO 8601; without a zone: UTC).")
    to: UTCTime | None = Field(None, description="End time, excluded (ISO 8601; without a zone: UTC).")

    @model_validator(mode="after")
    def _ordered(self):
        if self.from_ is not None and self.to is not None and self.to <= self.from_:
            raise ValueError("'to' must be after 'from'")
        return self


class ReadingsQuery(Period):
    """Query parameters of GET /readings."""

    sensor: list[Text] | None = Field(None, max_length=500, description="Sensor id; repeat for several.")
    kind: Kind | None = Field(None, description="Only sensors of this kind.")
    dma: Text | None = Field(None, description="Only sensors of this DMA.")
    resample: Annotated[str, StringConstraints(pattern=RESAMPLE_PATTERN)] | None = Field(
        None, description="One value per bucket of this length: 15min, 1h, 1D, 1W, MS (month)…"
    )
    how: Literal[HOWS] = Field("mean", description="Aggregate of each bucket.")  # type: ignore[valid-type]


class SensorsQuery(_Query):
    kind: Kind | None = None
    dma: Text | None = None


class AlarmsQuery(_Query):
    status: Status | None = Field(None, description="open, acknowledged or repaired.")
    dma: Text | None = None


class NRWQuery(Period):
    dma: Text | None = Field(None, description="A DMA (default: the whole utility).")
    country_group: Literal["developing", "developed"] = "developing"

    @model_validator(mode="after")
    def _needs_period(self):
        if self.from_ is None or self.to is None:
            raise ValueError("the water balance needs a period: give 'from' and 'to'")
        return self


class Sensor(BaseModel):
    """A sensor of the registry (units as the sensor reports; readings are served in internal units)."""

    model_config = ConfigDict(extra="forbid")
    sensor_id: Text
    kind: Kind
    unit: Text | None = None
    node_id: Text | None = None
    link_id: Text | None = None
    dma: Text | None = None
    description: Note | None = None


class SensorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    unit: Text | None = None
    node_id: Text | None = None
    link_id: Text | None = None
    dma: Text | None = None
    description: Note | None = None


class Series(BaseModel):
    sensor_id: str
    kind: str
    unit: str = Field(description="Internal unit of the values (m, m³/h, L/h).")
    time: list[str] = Field(description="UTC times, ISO 8601 (bucket starts when resampled).")
    value: list[float]


class Readings(BaseModel):
    count: int
    resample: str | None
    how: str | None
    series: list[Series]


class AlarmEvent(BaseModel):
    at: str
    by: str
    action: str
    note: str | None = None


class Alarm(BaseModel):
    alarm_id: int
    link_id: str | None
    candidates: list[str] = Field(description="Pipes ranked by how likely the leak is on them, best first.")
    start_time: str = Field(description="When the leak most likely began (UTC).")
    detected_at: str
    flow_m3h: float | None = Field(description="Estimated leak flow at detection [m³/h].")
    dma: str | None
    status: Status
    assigned_to: str | None
    history: list[AlarmEvent]
    updated_at: str


class AlarmAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note | None = None


class Repaired(AlarmAction):
    repaired_at: UTCTime | None = Field(None, description="When the repair was done (default: now).")


class Assign(AlarmAction):
    assigned_to: Text | None = Field(description="A crew or person; null to unassign.")


class DMA(BaseModel):
    dma: str
    nodes: int
    boundary_links: list[dict] = Field(description="link_id and sign (+1: the link's positive flow enters the DMA).")
    sensors: int


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text
    role: Role


class TokenInfo(BaseModel):
    token_id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None


class NewToken(TokenInfo):
    token: str = Field(description="The secret: shown this once, stored only as its SHA-256.")

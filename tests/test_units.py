"""Unit conversion to tirtasu's internal units (m, m³/h, L/h)."""

import numpy as np
import pytest

from tirtasu.units import (
    INTERNAL_UNIT,
    UnknownUnitError,
    canonical_unit,
    conversion_factor,
    flow_factor_to_m3h,
    to_internal,
)


@pytest.mark.parametrize(
    ("unit", "kind", "metres_or_m3h"),
    [
        ("psi", "pressure", 0.70307),  # 1 psi = 6894.757 Pa = 0.70307 m of water
        ("bar", "pressure", 10.1972),
        ("kPa", "pressure", 0.101972),
        ("mbar", "pressure", 0.0101972),
        ("ft", "pressure", 0.3048),
        ("m", "pressure", 1.0),
        ("L/s", "flow", 3.6),
        ("GPM", "flow", 0.2271247),  # US gallons
        ("MGD", "flow", 157.7255),
        ("m3/d", "flow", 1 / 24),
        ("CFS", "flow", 101.9406),
        ("LPS", "flow", 3.6),  # EPANET's name
        ("cm", "level", 0.01),
        ("ft", "head", 0.3048),
    ],
)
def test_conversion_factors(unit, kind, metres_or_m3h):
    # expected values are given to 6 significant figures
    assert conversion_factor(unit, kind) == pytest.approx(metres_or_m3h, rel=1e-5)


def test_one_psi_is_0_70307_m_and_one_bar_is_10_1972_m():
    assert to_internal(1.0, "psi", "pressure") == pytest.approx(0.70307, abs=1e-5)
    assert to_internal(1.0, "bar", "pressure") == pytest.approx(10.1972, abs=1e-4)


def test_flow_conversions_to_m3h():
    assert to_internal(10.0, "L/s", "flow") == pytest.approx(36.0)
    assert to_internal(1.0, "GPM", "flow") == pytest.approx(0.2271247, abs=1e-7)
    assert to_internal(1.0, "MGD", "flow") == pytest.approx(157.7255, abs=1e-4)


def test_demand_is_in_litres_per_hour():
    assert canonical_unit("demand") == "L/h"
    assert conversion_factor("L/s", "demand") == pytest.approx(3600.0)
    assert conversion_factor("m3/h", "demand") == pytest.approx(1000.0)


def test_unit_spelling_is_forgiving():
    assert conversion_factor(" PSI ", "pressure") == conversion_factor("psi", "pressure")
    assert conversion_factor("m³/h", "flow") == 1.0
    assert conversion_factor("l / s", "flow") == pytest.approx(3.6)


def test_no_unit_means_internal_unit():
    assert conversion_factor(None, "pressure") == 1.0
    assert conversion_factor("", "flow") == 1.0


def test_arrays_are_converted_elementwise():
    out = to_internal(np.array([1.0, 2.0]), "bar", "pressure")
    assert out == pytest.approx([10.1972, 20.3943], abs=1e-4)


def test_unknown_unit_raises_a_clear_error():
    with pytest.raises(UnknownUnitError) as err:
        conversion_factor("furlongs/fortnight", "flow")
    assert "furlongs/fortnight" in str(err.value)
    assert "flow" in str(err.value)
    assert err.value.unit == "furlongs/fortnight"


def test_a_unit_of_the_wrong_kind_is_unknown():
    with pytest.raises(UnknownUnitError):
        conversion_factor("L/s", "pressure")
    with pytest.raises(UnknownUnitError):
        conversion_factor("psi", "flow")


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown sensor kind"):
        conversion_factor("m", "temperature")


def test_quality_units_are_stored_as_given():
    assert INTERNAL_UNIT["quality"] is None
    assert conversion_factor("mg/L", "quality") == 1.0
    with pytest.raises(UnknownUnitError):
        conversion_factor("psi", "quality")


def test_epanet_flow_units():
    assert flow_factor_to_m3h("LPS") == pytest.approx(3.6)
    assert flow_factor_to_m3h("GPM") == pytest.approx(0.2271247, abs=1e-7)

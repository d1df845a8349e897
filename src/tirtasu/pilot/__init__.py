"""The simulated pilot utility used by ``tirtasu demo`` (L-Town, three DMAs, two months)."""

from tirtasu.pilot.build import PilotConfig, build_pilot, lton_model_path, pilot_is_current, write_pilot_audit

__all__ = ["PilotConfig", "build_pilot", "lton_model_path", "pilot_is_current", "write_pilot_audit"]

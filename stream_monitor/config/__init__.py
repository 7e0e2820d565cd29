"""Configuration: the frozen settings model, per-model monitor specs, and loading."""

from stream_monitor.config.loader import CONFIG_ENV_VAR, load_settings, parse_overrides
from stream_monitor.config.models import ModelSpec
from stream_monitor.config.settings import Settings

__all__ = ["CONFIG_ENV_VAR", "ModelSpec", "Settings", "load_settings", "parse_overrides"]

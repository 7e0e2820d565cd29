"""Load settings from a file, the environment and command-line overrides, reporting every problem.

Precedence, lowest first: defaults < config file < environment (``STREAM_MONITOR_*``) < flags.
The file is ``--config FILE`` or, without the flag, ``$STREAM_MONITOR_CONFIG``; with neither,
defaults plus the environment are used, so one variable is enough to point at a cluster.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import SettingsError

from stream_monitor.config.settings import ENV_PREFIX, Settings, _reset_file_data, _set_file_data
from stream_monitor.errors import ConfigError, ConfigProblem, error_location

__all__ = ["CONFIG_ENV_VAR", "load_settings", "parse_overrides", "read_config_file"]

CONFIG_ENV_VAR = "STREAM_MONITOR_CONFIG"
_MASK = "**********"
_MAX_VALUE_CHARS = 80


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML, TOML or JSON file (chosen by extension) into a mapping."""
    suffix = path.suffix.lower()
    if suffix not in {".yaml", ".yml", ".toml", ".json"}:
        raise ConfigError(
            [ConfigProblem(str(path), "", "has an unknown extension: use .yaml, .toml or .json")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(str(path), "", f"cannot be read ({exc.strerror}); check the path")]
        ) from None
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).replace("\n", " ")
        problem = ConfigProblem(str(path), "", f"is not valid {suffix[1:]}: {reason}")
        raise ConfigError([problem]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(str(path), "", "must contain a mapping of settings at the top level")]
        )
    return data


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["kafka.group_id=g1", "topics.partitions=3"]`` into a nested mapping.

    Values are read as YAML scalars, so numbers and booleans keep their types.
    """
    result: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            problems.append(ConfigProblem("--set", repr(pair), "must look like section.key=value"))
            continue
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if problems:
        raise ConfigError(problems, "command-line overrides")
    return result


def load_settings(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the effective settings, or raise :class:`ConfigError` listing every problem."""
    if path is None and os.environ.get(CONFIG_ENV_VAR):
        path = os.environ[CONFIG_ENV_VAR]
    file_data = read_config_file(Path(path)) if path else {}
    source = str(path) if path else "configuration"
    token = _set_file_data(file_data)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError([_problem(err) for err in exc.errors()], source) from None
    except SettingsError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    "environment",
                    "",
                    f"{_strip_values(str(exc))}; values of nested "
                    "settings in the environment must be JSON",
                )
            ],
            source,
        ) from None
    finally:
        _reset_file_data(token)


def _strip_values(message: str) -> str:
    return message.split(" from source ", maxsplit=1)[0]


def _problem(err: Any) -> ConfigProblem:
    path = error_location(err["loc"]) or "<root>"
    loc = tuple(path.split("."))
    given = err.get("input")
    value = (_MASK if given is not None else "") if _is_secret(loc) else _render(given, err["type"])
    if err["type"] in _BUILTIN_REASONS:
        reason = _BUILTIN_REASONS[err["type"]]
    elif str(err["msg"])[:1].islower():  # our own messages read on from the value
        reason = err["msg"]
    else:
        message = str(err["msg"])
        reason = f"is invalid: {message[:1].lower()}{message[1:]}"
    env_name = ENV_PREFIX + "__".join(loc).upper()
    if env_name in os.environ:
        reason += f" (set by {env_name})"
    return ConfigProblem(path, value, reason)


_BUILTIN_REASONS = {
    "extra_forbidden": "is not a known setting; check its spelling against docs/configuration.md",
    "missing": "is required",
}


def _render(value: Any, kind: str) -> str:
    if kind == "missing" or isinstance(value, dict):
        return ""
    if isinstance(value, SecretStr):
        return _MASK
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _is_secret(loc: tuple[str, ...]) -> bool:
    """True when ``loc`` points into a ``SecretStr`` field of the settings models."""
    model: type[BaseModel] | None = Settings
    skip_key = False
    for part in loc:
        if skip_key:  # the key of a dict field, such as a model id
            skip_key = False
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return False
        if "SecretStr" in str(field.annotation):
            return True
        skip_key = get_origin(field.annotation) is dict
        model = _submodel(field.annotation)
    return False


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None

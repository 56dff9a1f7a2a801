"""Building a run's configuration in layers, each overriding the one before:

    defaults  <  config file (TOML or YAML)  <  environment  <  command line

In the environment keys are ``FLOWERS_TFX__SECTION__KEY``
(``FLOWERS_TFX__MODEL__EPOCHS=3``). An unknown key or a bad value raises
:class:`~pipeline.config.ConfigError` naming the key and, where there is a
fixed set, the valid choices.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

from pipeline.config import (
    ENV_PREFIX,
    GLOB_KEYS,
    LIST_CHOICES,
    VALUE_RANGES,
    Config,
    ConfigError,
    field_types,
    sections,
)

AUTO = "auto"


def _convert(key: str, value: Any, kind: Any) -> Any:
    """Turns a value from a file, the environment or the command line into ``kind``."""
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if type(None) in arguments:  # Optional: "auto" means the model's recipe decides
        if value is None or (isinstance(value, str) and value.strip().lower() in (AUTO, "")):
            return None
        (kind,) = [a for a in arguments if a is not type(None)]
        origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not a valid choice; choose one of: {', '.join(choices)}")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: {value!r} is not a boolean; use true or false")
    if kind in (int, float):
        return _number(key, value, kind)
    if origin is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ConfigError(f"{key}: {value!r} is not a JSON list ({error})") from None
            else:
                value = text.split() if text else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: {value!r} is not a list")
        return [str(item) for item in value]
    if kind is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: {value!r} is not a string")
        return str(value)
    raise AssertionError(f"unsupported config type {kind} for {key}")


def _number(key: str, value: Any, kind: type) -> int | float:
    """``value`` as an int or float; NaN, infinities (e.g. ``1e400`` in a
    file) and, for an integer, fractions are refused naming the key."""
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}: {value!r} is not {what}")
    number: int | float = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if kind is int else float(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ConfigError(f"{key}: {value!r} is not {what}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    if kind is int and isinstance(number, float):
        if not number.is_integer():
            raise ConfigError(f"{key}: {value!r} is not an integer")
        number = int(number)
    return float(number) if kind is float else number


def _check_range(key: str, value: Any) -> None:
    for item in value if key in LIST_CHOICES else []:
        if item not in LIST_CHOICES[key]:
            raise ConfigError(f"{key}: {item!r} is not a valid choice; choose any of: {', '.join(LIST_CHOICES[key])}")
    if key not in VALUE_RANGES or value is None:
        return
    low, high = VALUE_RANGES[key]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key}: {value!r} is out of range; it must be {bounds}")


def _check_glob(key: str, value: str) -> None:
    """A glob of files: local or gs://, naming files rather than a folder."""
    if not value:
        return
    if not value.strip():
        raise ConfigError(f"{key}: {value!r} is blank; leave it empty to turn it off")
    if "://" in value and not value.startswith("gs://"):
        raise ConfigError(f"{key}: {value!r} is neither a local path nor a gs:// one")
    if value.endswith("/"):
        raise ConfigError(f"{key}: {value!r} names a folder; name its files, e.g. {value.rstrip('/')}/*.jpg")


def set_value(config: Config, key: str, value: Any) -> None:
    """Sets ``section.key`` on ``config``, converting and checking the value."""
    by_name = sections(config)
    section_name, _, field_name = key.partition(".")
    if section_name not in by_name or not field_name:
        raise ConfigError(
            f"unknown configuration key {key!r}; keys look like section.key, with sections: {', '.join(by_name)}"
        )
    section = by_name[section_name]
    types = field_types(section)
    if field_name not in types:
        raise ConfigError(f"unknown configuration key {key!r}; valid keys in [{section_name}]: {', '.join(types)}")
    converted = _convert(key, value, types[field_name])
    _check_range(key, converted)
    if key in GLOB_KEYS:
        _check_glob(key, converted)
    setattr(section, field_name, converted)


def apply_mapping(config: Config, mapping: Mapping[str, Any], origin: str) -> None:
    """Applies a nested ``{section: {key: value}}`` mapping, e.g. a parsed file."""
    for section_name, values in mapping.items():
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{origin}: {section_name!r} must be a section table such as [{section_name}], not a single value"
            )
        for field_name, value in values.items():
            try:
                set_value(config, f"{section_name}.{field_name}", value)
            except ConfigError as error:
                raise ConfigError(f"{origin}: {error}") from None


def read_file(path: str | Path) -> dict[str, Any]:
    """Parses a TOML (.toml) or YAML (.yaml/.yml) configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {error.start} cannot be decoded)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    parsed = _parse(path, text)
    if not isinstance(parsed, Mapping):
        raise ConfigError(
            f"{path}: the file holds a {type(parsed).__name__}, not sections such as [model]; "
            "write `section.key = value` lines under [section] headers"
        )
    return dict(parsed)


def _parse(path: Path, text: str) -> Any:
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text)
            return {} if loaded is None else loaded
    except Exception as error:  # the parsers' own error types differ
        raise ConfigError(f"{path}: cannot parse: {error}") from None
    raise ConfigError(f"{path}: unknown configuration format {path.suffix!r}; use .toml, .yaml or .yml")


def environment_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """``FLOWERS_TFX__MODEL__EPOCHS=3`` -> ``{'model.epochs': '3'}``."""
    overrides = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            overrides[key] = value
    return overrides


def parse_assignment(text: str) -> tuple[str, str]:
    """``'model.epochs=3'`` -> ``('model.epochs', '3')``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. model.epochs=3")
    return key.strip(), value.strip()


def load_config(
    file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Builds a configuration: defaults, then the file, environment and overrides."""
    config = Config()
    if file:
        apply_mapping(config, read_file(file), origin=str(file))
    env = os.environ if environ is None else environ
    for key, value in environment_overrides(env).items():
        try:
            set_value(config, key, value)
        except ConfigError as error:
            raise ConfigError(f"environment {ENV_PREFIX}{key.upper().replace('.', '__')}: {error}") from None
    for key, value in (overrides or {}).items():
        set_value(config, key, value)
    return config


def with_recipe(config: Config) -> Config:
    """A copy of ``config`` whose ``[model]`` settings left at ``auto`` hold
    the values the chosen model's recipe gives them: what a run really uses."""
    from components.trainer import recipes  # plain data, no TensorFlow

    resolved = copy.deepcopy(config)
    for key, value in recipes.resolve(dataclasses.asdict(config.model)).items():
        setattr(resolved.model, key, value)
    return resolved


def to_toml(config: Config) -> str:
    """The configuration as a TOML file that :func:`load_config` reads back."""
    lines = []
    for section_name, section in sections(config).items():
        lines.append(f"[{section_name}]")
        for field_name in field_types(section):
            value = getattr(section, field_name)
            lines.append(f"{field_name} = {json.dumps(AUTO if value is None else value)}")
        lines.append("")
    return "\n".join(lines)

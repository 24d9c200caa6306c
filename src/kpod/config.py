"""Typed configuration: dataclasses read from YAML and overridden from the command line.

Every setting of kpod lives in a dataclass field with a type and a default. `load_config` reads a
YAML file into such a dataclass, applies `--section.key value` overrides, checks and converts every
value to its declared type, and rejects unknown keys with the closest valid name:

    cfg = load_config(RunConfig, "configs/testbed.yaml", ["--train.lr", "1e-4"])

Commands with flat options build their argparse flags from a dataclass with `add_config_arguments`
and read them back with `config_from_args`, so a flag and a YAML key always have the same name.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from kpod.errors import ConfigError

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{_join(where, close[0])}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return ConfigError(f"unknown config key '{_join(where, key)}'{hint}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert `value` (from YAML or a command-line string) to type `tp`, or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: cannot read {value!r} as {tp}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} settings, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        item_type = args[0] if args else Any
        return [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value) if tp is float else int(value) if not isinstance(value, float) else value
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and (isinstance(number, float) and not number.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return tp(number)
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(value)
    raise ConfigError(f"{where}: unsupported config type {tp}")


def from_dict(cls: type[C], data: dict, where: str = "") -> C:
    """Build dataclass `cls` from a (nested) mapping; unknown keys and bad values raise ConfigError."""
    hints = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in (data or {}).items():
        if key not in fields:
            raise _unknown_key(key, list(fields), where)
        default = fields[key].default_factory
        if isinstance(value, dict) and dataclasses.is_dataclass(hints[key]) and default is not dataclasses.MISSING:
            value = merge(to_dict(default()), value)  # a section's own defaults, then what was given
        kwargs[key] = _coerce(value, hints[key], _join(where, key))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def to_dict(obj: Any) -> Any:
    """A plain, YAML- and JSON-serializable view of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_overrides(args: list[str]) -> dict:
    """Turn ["--train.lr", "1e-4", "--weigh.alpha=0.3", "seed=2"] into a nested mapping."""
    out: dict = {}
    i = 0
    while i < len(args):
        token = args[i]
        key = token[2:] if token.startswith("--") else token
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif token.startswith("--") and i + 1 < len(args) and not _is_key(args[i + 1]):
            value = args[i + 1]
            i += 2
        elif token.startswith("--"):
            value, i = "true", i + 1
        else:
            raise ConfigError(f"cannot read override '{token}': use --section.key VALUE or section.key=VALUE")
        node = out
        parts = key.replace("-", "_").split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value) if value != "" else ""
    return out


def _is_key(token: str) -> bool:
    return token.startswith("--") or re.match(r"^[A-Za-z_][\w.-]*=", token) is not None


def merge(base: dict, updates: dict) -> dict:
    """Recursively merge `updates` into a copy of `base`."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | dict | None = None) -> C:
    """Read `cls` from a YAML file (or defaults when `path` is None) and apply overrides."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    if overrides:
        data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(list(overrides)))
    return from_dict(cls, data)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one `--field-name` option per field of a flat dataclass (values are checked later)."""
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(hints[f.name]):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = f.metadata.get("help", "")
        flag = "--" + f.name.replace("_", "-")
        if hints[f.name] is bool:
            parser.add_argument(flag, dest=f.name, default=None, nargs="?", const="true",
                                help=f"{help_text} (default: {default})")
        else:
            parser.add_argument(flag, dest=f.name, default=None, help=f"{help_text} (default: {default})")


def config_from_args(cls: type[C], args: argparse.Namespace, base: C | None = None) -> C:
    """Read the options added by `add_config_arguments` back into a checked dataclass."""
    data = to_dict(base) if base is not None else {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return from_dict(cls, data)


def field_help(text: str, default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A dataclass field with a help string, shown by `kpod CMD --help`."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": text}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": text}, **kwargs)

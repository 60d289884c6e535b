"""Load recipes: TOML files with inheritance (``base = ...``) and ``--set`` overrides.

``load_recipe(path, overrides)`` reads the file and its bases (deep-merged, the child winning),
applies ``section.key=value`` overrides, and validates everything against
:mod:`bridgenet_cli.config.schema`. Every mistake is a :class:`BridgeNetError` whose message names
the file, the key, what was expected and, for unknown keys, the closest valid ones.
"""

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from bridgenet_cli.config.schema import Recipe
from bridgenet_cli.errors import BridgeNetError

# Allowed values of string fields whose set is closed (names in registries are checked when used).
CHOICES: dict[str, tuple[str, ...]] = {
    "model.variant": ("bridgenet", "mtl-baseline", "stl"),
    "model.refine": ("tfr", "add", "concat", "transformer"),
    "model.tfr_size": ("base", "large", "huge"),
    "model.dcnv3_impl": ("pytorch", "compiled"),
    "train.optimizer": ("adam", "adamw", "sgd"),
    "train.amp": ("none", "bf16", "fp16"),
    "train.device": ("auto", "cpu", "cuda"),
}

# Numeric fields that must be positive (> 0) or non-negative (>= 0).
POSITIVE = {
    "train.max_iters", "train.batch_size", "train.grad_accum", "train.lr", "train.checkpoint_every",
    "train.log_every", "eval.batch_size", "data.synthetic.num_train", "data.synthetic.num_val",
    "data.synthetic.height", "data.synthetic.width", "model.decoder_width", "model.head_width",
}  # fmt: skip
NON_NEGATIVE = {
    "train.weight_decay", "train.warmup_iters", "train.clip_grad", "train.eval_every",
    "train.deep_supervision", "data.num_workers", "eval.max_samples", "eval.edge_workers",
    "model.drop_path_rate", "model.backbone_drop_path_rate", "model.prelim_width",
    "model.backbone_depth",
}  # fmt: skip

_MISSING = object()


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, merge, override and validate a recipe file."""
    data, sources = _read_with_bases(Path(path), chain=())
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
        parts = key.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if depth == len(parts) or prefix not in sources:
                sources[prefix] = "--set"
    return _build(Recipe, data, prefix="", sources=sources, default_source=str(path))


def recipe_from_dict(data: dict[str, Any], source: str = "<dict>") -> Recipe:
    """Validate a plain dict (for example one read back from a run folder)."""
    return _build(Recipe, data, prefix="", sources={}, default_source=source)


# ----------------------------------------------------------------------------------------------
# Reading and merging
# ----------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BridgeNetError(
            f"recipe file not found: {path}",
            "check the path; shipped recipes live in the recipes/ folder",
        )
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BridgeNetError(
            f"{path}: not valid TOML: {exc}", "fix the syntax at that line"
        ) from None


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    """Return the merged dict of ``path`` and its bases, and which file set each dotted key."""
    resolved = path.resolve()
    data = _read_toml(path)
    base = data.pop("base", None)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if base is not None:
        bases = [base] if isinstance(base, str) else base
        if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
            raise BridgeNetError(
                f"{path}: key 'base' expects a file name or a list of file names, got {base!r}",
                'write base = "other.toml"',
            )
        for name in bases:
            base_path = path.parent / name
            if not base_path.is_file():
                raise BridgeNetError(
                    f"{path}: base recipe not found: {base_path}",
                    "base paths are relative to the recipe that names them",
                )
            if base_path.resolve() in (*chain, resolved):
                cycle = " -> ".join(p.name for p in (*chain, resolved, base_path.resolve()))
                raise BridgeNetError(
                    f"{path}: cyclic base chain {cycle}",
                    "remove the 'base' key that closes the loop",
                )
            base_data, base_sources = _read_with_bases(base_path, (*chain, resolved))
            _deep_merge(merged, base_data)
            sources.update(base_sources)
    _deep_merge(merged, data)
    for key in _dotted_keys(data):
        sources[key] = str(path)
    return merged, sources


def _deep_merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _dotted_keys(data: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


# ----------------------------------------------------------------------------------------------
# Overrides
# ----------------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value``; the value is read as TOML, else kept as a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or " " in key:
        raise BridgeNetError(
            f"bad override {text!r}: expected KEY=VALUE",
            "write it like --set train.max_iters=200",
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as --set model.backbone=vit-base
    return key, value


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "nothing (leave the key out)"
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if origin is dict:
        return f"a table of {_describe(typing.get_args(tp)[1])}s"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def _where(key: str, sources: dict[str, str], default_source: str) -> str:
    return sources.get(key, default_source)


def _convert(tp: Any, value: Any, key: str, sources: dict, default_source: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted; raise a one-line error."""

    def fail() -> typing.NoReturn:
        got = type(value).__name__
        raise BridgeNetError(
            f"{_where(key, sources, default_source)}: key '{key}' expects {_describe(tp)}, "
            f"got {value!r} ({got})",
            "fix the value's type",
        )

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, sources, default_source)
            except BridgeNetError:
                continue
        fail()
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail()
        return _build(tp, value, key + ".", sources, default_source)
    if origin is list:
        if not isinstance(value, list):
            fail()
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, key, sources, default_source) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        _, item_tp = typing.get_args(tp)
        return {
            str(k): _convert(item_tp, v, f"{key}.{k}", sources, default_source)
            for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    raise TypeError(f"unsupported schema type {tp!r} for {key}")


def _build(cls: type, data: dict, prefix: str, sources: dict, default_source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in fields:
            valid = list(fields)
            close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
            if close:
                hint = "did you mean " + " or ".join(f"'{prefix}{c}'" for c in close) + "?"
            else:
                hint = "valid keys here: " + ", ".join(f"{prefix}{c}" for c in valid)
            raise BridgeNetError(
                f"{_where(key, sources, default_source)}: unknown key '{key}'", hint
            )
        kwargs[name] = _convert(hints[name], value, key, sources, default_source)
        _check_value(key, kwargs[name], sources, default_source)
    return cls(**kwargs)


def _check_value(key: str, value: Any, sources: dict, default_source: str) -> None:
    where = _where(key, sources, default_source)
    if key in CHOICES and value not in CHOICES[key]:
        close = difflib.get_close_matches(str(value), CHOICES[key], n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise BridgeNetError(
            f"{where}: key '{key}' expects one of {', '.join(CHOICES[key])}, got {value!r}",
            f"{guess}use one of the listed values",
        )
    if key in POSITIVE and value <= 0:
        raise BridgeNetError(
            f"{where}: key '{key}' must be greater than 0, got {value!r}", "use a positive value"
        )
    if key in NON_NEGATIVE and value < 0:
        raise BridgeNetError(
            f"{where}: key '{key}' must not be negative, got {value!r}", "use 0 or more"
        )


# ----------------------------------------------------------------------------------------------
# Writing back
# ----------------------------------------------------------------------------------------------


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def recipe_to_toml(recipe: Recipe) -> str:
    """Render a resolved recipe as TOML (``None`` values are left out, as TOML has no null)."""
    lines: list[str] = []
    _emit_table(recipe_to_dict(recipe), [], lines)
    return "\n".join(lines).strip() + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{" + (f" {inner} " if inner else "") + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _emit_table(data: dict, path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not dataclasses.is_dataclass(v)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k not in _inline_keys(path)}
    if path:
        lines.append("")
        lines.append(f"[{'.'.join(path)}]")
    for key, value in scalars.items():
        if key in tables or value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        _emit_table(value, [*path, key], lines)


def _inline_keys(path: list[str]) -> set[str]:
    """Dict-valued fields written inline (``loss_weights``), not as sub-tables."""
    return {"loss_weights"} if path == ["train"] else set()

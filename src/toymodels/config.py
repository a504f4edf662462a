"""Config validation: a JSON Schema pass, then the checks a schema cannot express, all before any job runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from toymodels.grid import grid_cells

RESERVED_GRID_NAMES = ("cells", "datasets", "figures")


class ConfigError(ValueError):
    """A bad config value; the message names the key path and what is allowed."""


def _key_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<config root>"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        return f"{where}: unknown key(s) {unexpected}; allowed keys: {allowed}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator == "propertyNames":
        return f"{where}: key {error.instance!r} is not allowed; {error.message}"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{where}: {error.message} (allowed: {error.validator} {error.validator_value})"
    return f"{where}: {error.message}"


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (plain YAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"{loader.name}: line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                              f"in the same block (first on line {seen[key] + 1}); names must be unique")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config file, rejecting duplicate keys (e.g. two grids with the same name)."""
    with open(path) as handle:
        loader = _StrictLoader(handle)
        loader.name = str(path)
        try:
            return loader.get_single_data() or {}
        finally:
            loader.dispose()


def _study_block(study: str) -> dict[str, Any]:
    """Schema of one study's config block, generated from its parameter schema."""
    keys = {"$ref": f"#/$defs/{study}_keys"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["defaults", "grids"],
        "properties": {
            "defaults": {"$ref": f"#/$defs/{study}_params"},
            "grids": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/grid_name"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "sweep": {"type": "object", "propertyNames": keys,
                                  "additionalProperties": {"$ref": "#/$defs/sweep_values"}},
                        "set": {"type": "object", "propertyNames": keys},
                        "cases": {"type": "array", "minItems": 1,
                                  "items": {"type": "object", "minProperties": 1, "propertyNames": keys}},
                    },
                },
            },
            "figures": {"type": "object", "propertyNames": {"$ref": "#/$defs/grid_name"},
                        "additionalProperties": {"$ref": "#/$defs/figure"}},
        },
    }


def load_schema(path: str | Path) -> dict[str, Any]:
    """The config schema plus, for each ``studies/<study>.schema.yaml`` beside it, that study's block."""
    path = Path(path)
    schema = yaml.safe_load(path.read_text())
    for study_file in sorted((path.parent / "studies").glob("*.schema.yaml")):
        study = study_file.name.removesuffix(".schema.yaml")
        params = yaml.safe_load(study_file.read_text())
        schema["$defs"][f"{study}_params"] = params
        schema["$defs"][f"{study}_keys"] = {"enum": list(params["properties"])}
        schema["$defs"][f"{study}_study"] = _study_block(study)
        schema["properties"]["studies"]["properties"][study] = {"$ref": f"#/$defs/{study}_study"}
    return schema


def study_param_schema(schema: Mapping[str, Any], study: str) -> dict[str, Any]:
    """The JSON Schema of one study's hyperparameters (used for defaults, ``set``, sweeps and cases)."""
    return {**schema["$defs"][f"{study}_params"], "$defs": schema["$defs"]}


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any], plots: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
    """Raise :class:`ConfigError` listing every problem; ``plots[study][plot]`` names the grid roles each plot needs."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = [_describe(e) for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    for study, study_cfg in config["studies"].items():
        param_validator = jsonschema.Draft202012Validator(study_param_schema(schema, study))
        for grid, spec in study_cfg["grids"].items():
            where = f"studies.{study}.grids.{grid}"
            if grid in RESERVED_GRID_NAMES:
                problems.append(f"{where}: grid name {grid!r} is reserved ({list(RESERVED_GRID_NAMES)})")
            for key, values in (spec.get("sweep") or {}).items():
                if len(values) != len({repr(v) for v in values}):
                    problems.append(f"{where}.sweep.{key}: values repeat ({values}); each swept value must be distinct")
            try:
                cells = grid_cells(study, grid, study_cfg["defaults"], spec)
            except ValueError as error:
                problems.append(str(error))
                continue
            if not cells:
                problems.append(f"{where}: the grid has no cells (an empty sweep list?)")
            for cell in cells:
                for error in param_validator.iter_errors(cell.params):
                    problems.append(f"{where} (cell {cell.path}): {_describe(error)}")
                    break
        for name, figure in (study_cfg.get("figures") or {}).items():
            where = f"studies.{study}.figures.{name}"
            if figure["plot"] not in plots[study]:
                problems.append(f"{where}.plot: {figure['plot']!r} is not allowed; allowed values: {sorted(plots[study])}")
                continue
            roles = plots[study][figure["plot"]]
            given = figure.get("grids") or {}
            if sorted(given) != sorted(roles):
                problems.append(f"{where}.grids: needs exactly the roles {list(roles)}, got {sorted(given)}")
            for role, grid in given.items():
                if grid not in study_cfg["grids"]:
                    problems.append(f"{where}.grids.{role}: grid {grid!r} does not exist; grids of {study}: {sorted(study_cfg['grids'])}")
    names = [name for study_cfg in config["studies"].values() for name in (study_cfg.get("figures") or {})]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"studies.*.figures: figure names {duplicated} are used by more than one study")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(dict.fromkeys(problems)))

"""The configuration reference, generated from the Settings model (docs/configuration.md)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from opsgate.settings import Settings, default_data_dir


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    text = str(annotation) if get_args(annotation) else getattr(annotation, "__name__", "")
    for noise in ("typing.", "pydantic.types.", "pathlib.", "opsgate.", "<class '", "'>"):
        text = text.replace(noise, "")
    return text


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The `# …` comment block right above each field in the model's source: the settings
    modules document their fields with comments, and this keeps one source for both."""
    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    block: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# ").strip())
            continue
        m = re.match(r"^(\w+)\s*:", stripped)
        if m and block:
            out[m.group(1)] = " ".join(block)
        block = []
    return out


def _default(f: FieldInfo) -> str:
    if f.default_factory is default_data_dir:
        return "`$XDG_DATA_HOME/opsgate` or `~/.local/share/opsgate`"
    if f.default_factory is not None:
        try:
            value = f.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    elif f.default is PydanticUndefined:
        return "(required)"
    else:
        value = f.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if value in ("", None, [], {}):
        return "—"
    return f"`{value}`"


def _sub_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def rows(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> Iterator[tuple[str, str, str, str]]:
    """(key path, type, default, description) for every leaf setting."""
    notes = _comments(model)
    for name, f in model.model_fields.items():
        if name == "config_file":
            continue
        path = f"{prefix}{name}"
        sub = _sub_model(f.annotation)
        if sub is not None:
            yield from rows(sub, path + ".")
            continue
        desc = f.description or notes.get(name, "")
        yield path, _type_name(f.annotation), _default(f), desc.replace("|", "\\|")


def env_name(path: str) -> str:
    return "OPSGATE_" + path.upper().replace(".", "__")


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the settings model by `opsgate config reference`; a test keeps it in step.",
        "Set keys in the YAML file (`--config`, `OPSGATE_CONFIG`) or as environment variables",
        "(`OPSGATE_<SECTION>__<KEY>`). Priority: command-line flags, environment, file, defaults.",
        "Unknown keys are errors; `opsgate config check` lists every problem with its key path.",
        "",
        "| key | environment variable | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for path, typ, default, desc in rows():
        typ = typ if "`" in typ else typ.replace("|", "\\|")
        out.append(f"| `{path}` | `{env_name(path)}` | {typ} | {default} | {desc} |")
    return "\n".join(out) + "\n"

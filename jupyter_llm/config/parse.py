"""Checking loaded YAML against the rules and building the ``Config``.

The pool never sees YAML: ``parse_config`` turns the data into the frozen dataclasses of
``settings.py``, filling the defaults, resolving relative paths against the file's folder,
and applying a model's ``parking_lot`` overrides key by key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..validate import show
from . import settings as cfg
from .rules import (
    LIMITS,
    MAILBOX,
    MODEL,
    MODEL_SECTIONS,
    PARAMS,
    POOL,
    QUEUE,
    REMOTE_KEYS,
    SECTIONS,
    SHARED_SECTIONS,
    SOURCES,
    Invalid,
    as_mapping,
    check_keys,
    checked,
    checked_section,
)

__all__ = ["parse_config"]


def parse_config(data: object, file: str, base_dir: Path) -> cfg.Config:
    """Check the loaded YAML ``data`` and build the ``Config``; one ``ConfigError`` if wrong."""
    try:
        top = as_mapping(data, "", "a mapping with parking_lot and models")
        check_keys(top, "", ("parking_lot", "models"))
        parking_lot = _parking_lot(top.get("parking_lot"), "parking_lot", base_dir)
        models = _models(top, parking_lot, base_dir)
    except Invalid as e:
        raise ConfigError(file, e.key, e.problem) from None
    return cfg.Config(path=file, parking_lot=parking_lot, models=models)


def _parking_lot(data: object, path: str, base_dir: Path) -> cfg.ParkingLot:
    sections = as_mapping(data, path)
    check_keys(sections, path, SECTIONS)
    queue = cfg.QueueSettings(**checked_section(sections.get("queue"), f"{path}.queue", QUEUE))
    if queue.persistence and queue.backend != "sqlite":
        raise Invalid(
            f"{path}.queue.persistence",
            f"true needs backend: sqlite (a memory queue cannot survive a restart), "
            f"got backend: {queue.backend}",
        )
    mailbox = checked_section(sections.get("mailbox"), f"{path}.mailbox", MAILBOX)
    if mailbox.get("path") is not None:
        mailbox["path"] = _local(mailbox["path"], base_dir)
    return cfg.ParkingLot(
        pool=cfg.PoolSettings(**checked_section(sections.get("pool"), f"{path}.pool", POOL)),
        limits=cfg.LimitsSettings(
            **checked_section(sections.get("limits"), f"{path}.limits", LIMITS)
        ),
        queue=queue,
        mailbox=cfg.MailboxSettings(**mailbox),
    )


def _overrides(data: object, path: str, shared: cfg.ParkingLot) -> cfg.ParkingLot:
    sections = as_mapping(data, path)
    for name in SHARED_SECTIONS:
        if name in sections:
            raise Invalid(
                f"{path}.{name}",
                f"the {name} is shared by all models; set it under the top-level parking_lot",
            )
    check_keys(sections, path, ("pool", "limits"))
    pool = checked_section(sections.get("pool"), f"{path}.pool", POOL)
    limits = checked_section(sections.get("limits"), f"{path}.limits", LIMITS)
    # Key by key: overriding max_units keeps the global max_queue_depth.
    return replace(
        shared, pool=replace(shared.pool, **pool), limits=replace(shared.limits, **limits)
    )


def _models(
    top: Mapping[str, Any], shared: cfg.ParkingLot, base_dir: Path
) -> tuple[cfg.ModelConfig, ...]:
    if "models" not in top:
        raise Invalid("models", "missing; expected a list of at least one model")
    entries = top["models"]
    if not isinstance(entries, list) or not entries:
        raise Invalid("models", f"expected a list of at least one model, got {show(entries)}")
    models: list[cfg.ModelConfig] = []
    for i, entry in enumerate(entries):
        model = _model(entry, f"models[{i}]", shared, base_dir)
        for j, other in enumerate(models):
            if other.name == model.name:
                raise Invalid(
                    f"models[{i}].name",
                    f"duplicate model name {model.name!r}; models[{j}] already uses it",
                )
        models.append(model)
    return tuple(models)


def _model(data: object, path: str, shared: cfg.ParkingLot, base_dir: Path) -> cfg.ModelConfig:
    if not isinstance(data, dict):
        raise Invalid(path, f"expected a mapping with name and a source, got {show(data)}")
    entry = data
    check_keys(entry, path, [*MODEL, *MODEL_SECTIONS])
    values = checked(entry, path, MODEL)
    if "name" not in values:
        raise Invalid(f"{path}.name", "missing; every model needs a name (the id clients use)")
    backend = values.get("backend", "transformers")
    source = _source(values, path, backend, base_dir)
    base_url = values.get("base_url")
    api_key_env = values.get("api_key_env")
    if backend == "openai" and base_url is None:
        raise Invalid(
            f"{path}.base_url",
            "missing; an openai model needs the URL of its server (http:// or https://)",
        )
    for key in REMOTE_KEYS:
        if backend != "openai" and key in values:
            raise Invalid(
                f"{path}.{key}", f"only the openai backend takes {key}; this model is {backend}"
            )
    return cfg.ModelConfig(
        name=values["name"],
        backend=backend,
        source=source,
        params=cfg.ModelParams(**checked_section(entry.get("params"), f"{path}.params", PARAMS)),
        parking_lot=_overrides(entry.get("parking_lot"), f"{path}.parking_lot", shared),
        base_url=base_url,
        api_key_env=api_key_env,
        remote_model=values.get("remote_model"),
        request_timeout_secs=values.get("request_timeout_secs", 600.0),
        tool_parser=values.get("tool_parser"),
        fim=values.get("fim", "auto"),
    )


def _source(
    values: Mapping[str, Any], path: str, backend: str, base_dir: Path
) -> cfg.ModelSource | None:
    given = [k for k in SOURCES if k in values]
    if backend != "transformers":
        # A remote or scripted model loads nothing; hf_id may say what it serves.
        for key in given:
            if key != "hf_id":
                raise Invalid(
                    f"{path}.{key}",
                    f"the {backend} backend loads no files; only hf_id (informational) is allowed",
                )
        for key in ("revision", "download"):
            if key in values:
                raise Invalid(
                    f"{path}.{key}", f"the {backend} backend downloads nothing; remove {key}"
                )
        return cfg.ModelSource("hf_id", values["hf_id"]) if given else None
    if not given:
        raise Invalid(
            path, "a transformers model needs one source: hf_id, local_path or gguf; got none"
        )
    if len(given) > 1:
        raise Invalid(
            path,
            f"both {given[0]} and {given[1]} are given; "
            "give exactly one source: hf_id, local_path or gguf",
        )
    kind = given[0]
    value: str = values[kind]
    if kind == "local_path" or (kind == "gguf" and cfg.gguf_form(value) == "path"):
        value = _local(value, base_dir)
    source = cfg.ModelSource(kind, value)
    for key in ("revision", "download"):
        if key in values and not source.on_hub:
            raise Invalid(
                f"{path}.{key}",
                f"{key} applies to files from the Hugging Face Hub (hf_id, or gguf: "
                f"owner/repo:file.gguf); this model's source is {kind}: {values[kind]}",
            )
    return replace(source, revision=values.get("revision"), download=values.get("download", True))


def _local(value: str, base_dir: Path) -> str:
    return os.path.normpath(base_dir / Path(value).expanduser())

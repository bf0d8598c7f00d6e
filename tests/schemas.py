"""Random JSON schemas of the kinds structured-output clients send, small enough that a tiny
random model completes a document within a few hundred tokens."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["random_schema"]


def random_schema(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return _object(rng, depth=0)


def _object(rng: random.Random, depth: int) -> dict[str, Any]:
    names = rng.sample(
        ["id", "name", "city", "tags", "ok", "kind", "size", "owner"], k=rng.randint(1, 4)
    )
    properties = {name: _value(rng, depth + 1) for name in names}
    required = [name for name in names if rng.random() < 0.8]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _value(rng: random.Random, depth: int) -> dict[str, Any]:
    kinds = ["string", "integer", "boolean", "enum", "null"]
    if depth < 3:
        kinds += ["object", "array"]
    kind = rng.choice(kinds)
    if kind == "string":
        return {"type": "string", "maxLength": rng.randint(1, 6)}
    if kind == "integer":
        low = rng.randint(-50, 50)
        return {"type": "integer", "minimum": low, "maximum": low + rng.randint(0, 500)}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "enum":
        return {"enum": rng.sample(["red", "green", "blue", "cyan", "x y"], k=rng.randint(1, 3))}
    if kind == "null":
        return {"type": "null"}
    if kind == "object":
        return _object(rng, depth)
    return {"type": "array", "items": _value(rng, depth + 1), "maxItems": rng.randint(1, 3)}

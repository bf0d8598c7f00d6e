"""The OpenAPI 3.1 description of every route, shipped as ``openapi.json`` in this package.

The file is the contract that tests check live responses against and that schemathesis
fuzzes. Served, it is fitted to the server: ``servers`` names its base URL and the model
name lists the configured models (any other name is a 404).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

__all__ = ["openapi_document", "packaged_document"]


@functools.cache
def _packaged() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def packaged_document() -> dict[str, Any]:
    """The document as shipped (a copy: callers may change it)."""
    return copy.deepcopy(_packaged())


def openapi_document(base_url: str, models: Sequence[str]) -> dict[str, Any]:
    """The document for a server at ``base_url`` (``/`` or ``/prefix/``) serving ``models``."""
    document = packaged_document()
    document["servers"] = [{"url": base_url.rstrip("/") or "/"}]
    if models:
        document["components"]["schemas"]["ModelName"]["enum"] = list(models)
    return document

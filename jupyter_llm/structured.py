"""Tools and structured output as frozen values, and the JSON schema a request's output obeys.

``Tool``, ``ToolCall``, ``ToolChoice`` and ``ResponseFormat`` are what an OpenAI request's
``tools``, ``tool_choice``, ``response_format`` and a message's ``tool_calls`` become.
``output_schema`` says which JSON schema, if any, the engine constrains a request's output to:

* ``tool_choice`` naming a function: that function's arguments (the whole output is them);
* ``tool_choice: required``: one call, ``{"name": ..., "arguments": {...}}``, of any tool;
* ``response_format`` ``json_object``: any JSON object; ``json_schema``: its schema.

JSON schemas travel as compact JSON text: hashable, picklable, and the same schema is the
same text, so an engine caches its compiled grammar by it. Keys keep their order: the output
writes an object's properties in the order its schema lists them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest

__all__ = [
    "ResponseFormat",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "canonical_json",
    "output_schema",
]

ANY_OBJECT = '{"type":"object"}'
TOOL_CHOICES = ("auto", "none", "required", "function")
FORMATS = ("text", "json_object", "json_schema")


def canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made: ``arguments`` is JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    def to_template(self) -> dict[str, Any]:
        """As chat templates read it: arguments as an object (Qwen, Llama apply ``tojson``)."""
        try:
            arguments: Any = json.loads(self.arguments)
        except ValueError:
            arguments = self.arguments
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is its JSON schema as canonical text."""

    name: str
    description: str = ""
    parameters: str = ANY_OBJECT

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidRequest("tools: every function needs a name", "tools")

    def to_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": json.loads(self.parameters)}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` (the model decides), ``none``, ``required``, or ``function`` named ``name``."""

    mode: str = "auto"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in TOOL_CHOICES or (self.mode == "function") != (self.name is not None):
            raise InvalidRequest(
                f"tool_choice: expected auto, none, required or a named function, got "
                f"{self.mode!r}",
                "tool_choice",
            )

    def to_openai(self) -> str | dict[str, Any]:
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``text``, ``json_object``, or ``json_schema`` with ``schema`` as canonical JSON text."""

    type: str = "text"
    schema: str | None = None
    name: str = "response"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.type not in FORMATS or (self.type == "json_schema") != (self.schema is not None):
            raise InvalidRequest(
                f"response_format.type: expected text, json_object or json_schema with a "
                f"schema, got {self.type!r}",
                "response_format.type",
            )

    def to_openai(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        assert self.schema is not None
        return {
            "type": "json_schema",
            "json_schema": {
                "name": self.name,
                "schema": json.loads(self.schema),
                "strict": self.strict,
            },
        }


def output_schema(
    tools: tuple[Tool, ...], choice: ToolChoice, response_format: ResponseFormat | None
) -> str | None:
    """The JSON schema (canonical text) the output must match; None leaves it free."""
    if tools and choice.mode == "function":
        return next(t.parameters for t in tools if t.name == choice.name)
    if tools and choice.mode == "required":
        calls = [
            {
                "type": "object",
                "properties": {  # the name first: a reader knows the call before its arguments
                    "name": {"const": tool.name},
                    "arguments": json.loads(tool.parameters),
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for tool in tools
        ]
        return canonical_json(calls[0] if len(calls) == 1 else {"anyOf": calls})
    if response_format is None or response_format.type == "text":
        return None
    return ANY_OBJECT if response_format.type == "json_object" else response_format.schema

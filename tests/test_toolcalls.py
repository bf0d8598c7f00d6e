"""Tool-call parsers against the syntax each family's chat template writes.

The round trip: a template renders an earlier assistant turn's tool calls in its own syntax;
what the parser reads back out of that rendering is the same calls. Streaming reads the same
text cut at every point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_llm.engine.prompt import encode, load_tokenizer, tool_parser
from jupyter_llm.structured import Tool, ToolCall, ToolChoice, canonical_json
from jupyter_llm.toolcalls import ToolCallReader, detect, parse
from jupyter_llm.types import GenerationRequest, Message

from .templates import build_llama31, build_mistral, build_qwen25

WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    canonical_json({"type": "object", "properties": {"city": {"type": "string"}}}),
)
CALLS = (
    ToolCall("c1", "get_weather", '{"city": "Oslo"}'),
    ToolCall("c2", "get_weather", '{"city": "Lima"}'),
)
BUILDERS = {"hermes": build_qwen25, "llama3": build_llama31, "mistral": build_mistral}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    name = request.param
    model_dir = BUILDERS[name](tmp_path_factory.mktemp(name))
    return name, load_tokenizer(str(model_dir))


def rendered_calls(tokenizer, calls: tuple[ToolCall, ...]) -> str:
    """The assistant turn a template writes for ``calls``, as the detokenizer shows it."""
    user = [{"role": "user", "content": "weather?"}]
    turn = {"role": "assistant", "content": "", "tool_calls": [c.to_template() for c in calls]}
    tools = [WEATHER.to_openai()]
    head = tokenizer.apply_chat_template(
        user, tools=tools, add_generation_prompt=True, tokenize=False
    )
    whole = tokenizer.apply_chat_template(
        [*user, turn], tools=tools, add_generation_prompt=False, tokenize=False
    )
    # Where the generation prompt ends (Mistral's tools sit before the last user turn, so
    # the prompt is not a prefix of the whole chat; its last characters still end it).
    cut = whole.rindex(head[-15:]) + 15
    ids = tokenizer(whole[cut:], add_special_tokens=False)["input_ids"]
    return str(tokenizer.decode(ids, skip_special_tokens=True))


def test_each_template_names_its_parser(family) -> None:
    name, tokenizer = family
    assert detect(tokenizer.chat_template) == name
    assert tool_parser(tokenizer, None) == name
    assert tool_parser(tokenizer, "mistral") == "mistral"


def test_the_tools_reach_the_prompt(family) -> None:
    _, tokenizer = family
    request = GenerationRequest("m", messages=(Message("user", "weather?"),), tools=(WEATHER,))
    prompt = tokenizer.decode(encode(tokenizer, request))
    assert "get_weather" in prompt and "The weather in a city" in prompt
    unused = GenerationRequest(
        "m",
        messages=(Message("user", "weather?"),),
        tools=(WEATHER,),
        tool_choice=ToolChoice("none"),
    )
    assert "get_weather" not in tokenizer.decode(encode(tokenizer, unused))


@pytest.mark.parametrize("count", [1, 2])
def test_a_rendered_call_parses_back(family, count: int) -> None:
    name, tokenizer = family
    calls = CALLS[:count]
    if name == "llama3" and count == 2:
        pytest.skip("Llama 3.1's template writes one call a turn")
    text = rendered_calls(tokenizer, calls)
    parsed = parse(name, text)
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [
        (c.name, json.loads(c.arguments)) for c in calls
    ], text
    assert not parsed.content


@pytest.mark.parametrize("count", [1, 2])
def test_a_streamed_call_parses_back_however_it_is_cut(family, count: int) -> None:
    name, tokenizer = family
    if name == "llama3" and count == 2:
        pytest.skip("Llama 3.1's template writes one call a turn")
    text = rendered_calls(tokenizer, CALLS[:count])
    for cut in range(len(text) + 1):
        reader = ToolCallReader(name)
        shown = reader.feed(text[:cut]) + reader.feed(text[cut:])
        ending = reader.finish()
        assert [c.name for c in ending.calls] == ["get_weather"] * count, (cut, text)
        assert not shown.strip() and not ending.content


@pytest.mark.parametrize("parser", ["hermes", "llama3", "mistral"])
def test_plain_text_stays_content(parser: str) -> None:
    for text in ("Hello there.", "{not json", "[1, 2]", "<tool_call> broken", "", "<tool"):
        assert parse(parser, text).calls == ()
        reader = ToolCallReader(parser)
        shown = "".join(reader.feed(part) for part in text)
        ending = reader.finish()
        assert shown + (ending.content or "") == text and not ending.calls


def test_hermes_keeps_the_text_before_a_call() -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'
    parsed = parse("hermes", text)
    assert parsed.content == "Let me look."
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [("f", {"x": 1})]
    reader = ToolCallReader("hermes")
    shown = "".join(reader.feed(ch) for ch in text)
    assert shown.strip() == "Let me look."
    assert [c.name for c in reader.finish().calls] == ["f"]


def test_llama3_reads_parameters_after_the_python_tag() -> None:
    text = '<|python_tag|>{"name": "f", "parameters": {"x": "y"}}'
    (call,) = parse("llama3", text).calls
    assert (call.name, json.loads(call.arguments)) == ("f", {"x": "y"})
    assert call.id.startswith("call_")


def test_mistral_reads_a_list_with_or_without_its_marker() -> None:
    for prefix in ("[TOOL_CALLS]", ""):
        text = prefix + '[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"a": 1}}]'
        assert [c.name for c in parse("mistral", text).calls] == ["f", "g"]


def test_a_template_without_tools_gets_them_in_a_system_message(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert tool_parser(tokenizer, None) == "hermes"
    request = GenerationRequest(
        "m",
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", CALLS[:1]),
            Message("tool", "sunny", tool_call_id="c1"),
        ),
        tools=(WEATHER,),
    )
    prompt = tokenizer.decode(encode(tokenizer, request))
    assert "<tools>" in prompt and "get_weather" in prompt
    assert "<tool_response>\nsunny\n</tool_response>" in prompt
    calls = parse("hermes", prompt[prompt.rindex("<tool_call>\n{") :].split("<|im_end|>")[0]).calls
    assert [c.name for c in calls] == ["get_weather"]

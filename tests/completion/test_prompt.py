"""Prompt assembly for completions: FIM, instruction and continuation forms."""

from __future__ import annotations

from jupyter_llm.completion import CURSOR, PRESETS, FimTokens, assemble, detect, resolve
from jupyter_llm.types import CompletionInput, GenerationRequest


def request(prefix: str, suffix: str = "", context: tuple[str, ...] = ()) -> GenerationRequest:
    return GenerationRequest(
        "m", completion=CompletionInput(prefix, suffix, "python", context=context)
    )


def test_fim_puts_the_text_around_the_cursor_in_prefix_suffix_middle_order():
    assembled = assemble(request("x = ", "\nprint(x)"), PRESETS["starcoder"], chat=True)
    assert assembled.prompt == "<fim_prefix>x = <fim_suffix>\nprint(x)<fim_middle>"
    assert assembled.messages is None


def test_earlier_cells_come_first_oldest_first_skipping_empty_ones():
    cells = ("import os", " ", "x = 1")
    assembled = assemble(request("y = ", context=cells), PRESETS["qwen"], chat=True)
    assert assembled.prompt == (
        "<|fim_prefix|>import os\n\nx = 1\n\ny = <|fim_suffix|><|fim_middle|>"
    )


def test_codellama_keeps_its_spaces_around_the_markers():
    assembled = assemble(request("a", "b"), PRESETS["codellama"], chat=False)
    assert assembled.prompt == "<PRE> a <SUF>b <MID>"


def test_without_fim_a_chat_model_gets_an_instruction_with_a_cursor_marker():
    assembled = assemble(request("x = ", "\nprint(x)", context=("import os",)), None, chat=True)
    assert assembled.prompt is None and assembled.messages is not None
    system, user = assembled.messages
    assert system.role == "system" and "only the text to insert" in system.content
    assert "no markdown fences" in system.content and "python" in system.content
    assert user.content.startswith("Earlier cells, for context:\nimport os")
    assert user.content.endswith(f"x = {CURSOR}\nprint(x)")


def test_without_fim_or_chat_template_the_model_continues_the_text():
    assert assemble(request("x = ", "!", context=("a",)), None, chat=False).prompt == "a\n\nx = "


def test_an_assembled_request_is_kept_as_it_is():
    once = assemble(request("x"), PRESETS["starcoder"], chat=True)
    assert assemble(once, PRESETS["qwen"], chat=True) is once
    plain = GenerationRequest("m", prompt="hi")
    assert assemble(plain, PRESETS["qwen"], chat=True) is plain


def test_fim_tokens_are_read_from_the_tokenizer_special_tokens():
    assert (
        detect({"<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"})
        == (PRESETS["starcoder"])
    )
    assert detect({"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}) == PRESETS["qwen"]
    assert detect({"<PRE>", "<SUF>", "<MID>"}) == PRESETS["codellama"]
    assert detect({"<|im_start|>", "<fim_prefix>"}) is None  # all three, or none


def test_a_model_entry_setting_wins_over_the_tokenizer():
    special = {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}
    own = FimTokens("<p>", "<s>", "<m>")
    assert resolve("auto", special) == PRESETS["starcoder"]
    assert resolve("none", special) is None
    assert resolve("qwen", special) == PRESETS["qwen"]
    assert resolve(own, special) is own

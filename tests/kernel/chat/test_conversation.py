"""The transcript as data: OpenAI messages, turns left out, Markdown, and saved files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_llm.kernel.chat.conversation import ChatFileError, Conversation


def chat() -> Conversation:
    conversation = Conversation("be brief")
    conversation.add("user", "one")
    conversation.add("assistant", "1", model="m", meta="m · 1 tokens")
    conversation.add("error", "the queue is full")
    conversation.add("user", "two")
    conversation.add("assistant", "")  # stopped before its first token: not said
    conversation.add("user", "three")
    return conversation


def test_messages_put_the_system_prompt_first_and_skip_what_was_not_said() -> None:
    assert chat().messages() == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"},
        {"role": "user", "content": "two"},
        {"role": "user", "content": "three"},
    ]


def test_a_request_leaves_out_the_oldest_turns_but_never_the_system_or_the_question() -> None:
    conversation = chat()
    assert [m["content"] for m in conversation.request(1)] == ["be brief", "two", "three"]
    assert [m["content"] for m in conversation.request(99)] == ["be brief", "three"]
    conversation.add("assistant", "3")
    with pytest.raises(ValueError, match="does not end with one"):
        conversation.request()


def test_answering_again_drops_what_followed_the_last_question() -> None:
    conversation = chat()
    conversation.add("assistant", "3")
    assert conversation.remove_after_last_question().text == "three"
    assert conversation.entries[-1].text == "three"
    with pytest.raises(ValueError, match="no message"):
        Conversation().remove_after_last_question()


def test_markdown_export() -> None:
    text = chat().to_markdown()
    assert text.startswith("**System:** be brief\n\n### You\n\none\n\n### m\n\n1\n\n*m · 1 tokens*")
    assert "> error: the queue is full" in text


def test_a_saved_chat_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(chat().to_dict({"model": "m"})))
    loaded, settings = Conversation.from_file(path)
    assert settings == {"model": "m"}
    assert loaded.messages() == chat().messages()
    assert [e.to_dict() for e in loaded.entries] == [e.to_dict() for e in chat().entries]


HEAD = '{"format": "jupyter_llm.chat", "version": 1'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON"),
        ('{"format": "other"}', "is not a saved chat"),
        ('{"format": "jupyter_llm.chat", "version": 7}', "version 7 is not supported"),
        (HEAD + ', "entries": {}}', "entries must be a list"),
        (HEAD + ', "entries": [{"role": "bot"}]}', r"entries\[0\].role must be one of"),
        (HEAD + ', "entries": [{"role": "user", "text": 1}]}', r"entries\[0\].text must be text"),
        (HEAD + ', "entries": [{"role": "user", "x": 1}]}', "unknown field 'x'"),
    ],
)
def test_a_bad_file_names_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ChatFileError, match=message):
        Conversation.from_file(path)
    with pytest.raises(ChatFileError, match="cannot read"):
        Conversation.from_file(tmp_path / "missing.json")

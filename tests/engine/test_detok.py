from __future__ import annotations

import pytest

from jupyter_llm.engine.detok import Detokenizer
from jupyter_llm.engine.prompt import load_tokenizer

TEXT = "Émile wrote « déjà vu » in 東京 😀 — naïve café."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def stream(tokenizer, ids, stop=()):
    detok = Detokenizer(tokenizer, [], stop)
    chunks = []
    for token in ids:
        text, stopped = detok.push(token)
        chunks.append(text)
        if stopped:
            return chunks, True
    chunks.append(detok.flush())
    return chunks, False


def test_multibyte_characters_are_never_split(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    assert len(ids) > len(TEXT.split())  # byte-level pieces: some characters span tokens
    chunks, _ = stream(tokenizer, ids)
    assert "".join(chunks) == TEXT
    assert not any("\ufffd" in chunk for chunk in chunks)


@pytest.mark.parametrize("stop", ["déjà", "東京", " in", "vu » in"])
def test_no_text_past_a_stop_string(tokenizer, stop):
    ids = tokenizer(TEXT)["input_ids"]
    chunks, stopped = stream(tokenizer, ids, (stop,))
    assert stopped
    assert "".join(chunks) == TEXT[: TEXT.index(stop)]


def test_the_earliest_of_several_stops_wins(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    chunks, _ = stream(tokenizer, ids, ("café", "wrote"))
    assert "".join(chunks) == "Émile "


def test_a_stop_that_never_comes_holds_nothing_back_at_the_end(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    chunks, stopped = stream(tokenizer, ids, ("zzz-not-there",))
    assert not stopped and "".join(chunks) == TEXT

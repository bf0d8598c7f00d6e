from __future__ import annotations

import subprocess
import sys
import time

import pytest

from jupyter_llm.engine.prompt import (
    encode,
    fewest_tokens,
    load_tokenizer,
    longest_token,
    token_counter,
)
from jupyter_llm.errors import InvalidRequest
from jupyter_llm.types import GenerationRequest, Message, SamplingParams


def test_the_server_side_counter_does_not_import_torch(tiny_model_dir):
    code = (
        "import sys; from jupyter_llm.engine.prompt import token_counter; "
        "from jupyter_llm.types import GenerationRequest, Message; "
        f"count = token_counter({str(tiny_model_dir)!r}); "
        "n = count(GenerationRequest('m', messages=(Message('user', 'hello there'),)), 100); "
        "print(n, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, torch_loaded = out.stdout.split()
    assert int(count) > 2 and torch_loaded == "False"


def test_counter_and_engine_tokenize_alike(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    count = token_counter(str(tiny_model_dir))
    for request in (
        GenerationRequest("m", prompt="Tokens stream into the cell."),
        GenerationRequest("m", messages=(Message("system", "Be brief."), Message("user", "Hi"))),
    ):
        assert count(request, 100) == len(encode(tokenizer, request))


def test_messages_to_a_model_without_a_chat_template_are_refused(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.chat_template = None
    with pytest.raises(InvalidRequest, match="has no chat template: send a prompt"):
        encode(tokenizer, GenerationRequest("m", messages=(Message("user", "Hi"),)))


def test_a_prompt_far_beyond_the_limit_is_not_counted_whole(tiny_model_dir):
    count = token_counter(str(tiny_model_dir))
    huge = GenerationRequest("m", messages=(Message("user", "word " * 2_400_000),))  # 12 MB
    started = time.perf_counter()
    floor = count(huge, 8192)
    took = time.perf_counter() - started
    assert 8192 < floor <= 12_000_000 and took < 1, (floor, took)


def test_the_floor_never_passes_the_true_count(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    longest = longest_token(tokenizer)
    assert longest is not None
    count = token_counter(str(tiny_model_dir))
    # The longest piece of the vocabulary, over and over: one token per `longest` characters,
    # the tightest text there is; and plain words, near the threshold and far past it.
    piece = max(tokenizer.get_vocab(), key=len)
    for text in (piece * 40, piece * 41 + " x", "words, more words. " * 200):
        for request in (
            GenerationRequest("m", prompt=text),
            GenerationRequest("m", messages=(Message("user", text),)),
        ):
            true = len(encode(tokenizer, request))
            floor = fewest_tokens(tokenizer, request, longest, 30)
            assert floor <= true, (text[:40], floor, true)
            assert count(request, 30) == (floor or true)
            assert count(request, true) == true  # within the limit: exact


def test_a_vocabulary_that_can_swallow_a_run_of_text_gets_no_floor():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]")
    assert len(tokenizer("x" * 1000)["input_ids"]) == 1  # 1000 characters, one token
    assert longest_token(tokenizer) is None


def test_a_logit_bias_outside_the_vocabulary_is_refused_before_the_job(tiny_model_dir):
    count = token_counter(str(tiny_model_dir))
    vocabulary = len(load_tokenizer(str(tiny_model_dir)))
    ok = GenerationRequest("tiny", prompt="hi", params=SamplingParams(logit_bias=((1, 5.0),)))
    assert count(ok, 100) > 0
    bad = GenerationRequest(
        "tiny", prompt="hi", params=SamplingParams(logit_bias=((vocabulary, 5.0),))
    )
    with pytest.raises(InvalidRequest, match=f"token {vocabulary} is not in") as caught:
        count(bad, 100)
    assert caught.value.param == "logit_bias"

from __future__ import annotations

import subprocess
import sys

import pytest

from jupyter_llm.engine.prompt import encode, load_tokenizer, token_counter
from jupyter_llm.errors import InvalidRequest
from jupyter_llm.types import GenerationRequest, Message


def test_the_server_side_counter_does_not_import_torch(tiny_model_dir):
    code = (
        "import sys; from jupyter_llm.engine.prompt import token_counter; "
        "from jupyter_llm.types import GenerationRequest, Message; "
        f"count = token_counter({str(tiny_model_dir)!r}); "
        "n = count(GenerationRequest('m', messages=(Message('user', 'hello there'),))); "
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
        assert count(request) == len(encode(tokenizer, request))


def test_messages_to_a_model_without_a_chat_template_are_refused(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.chat_template = None
    with pytest.raises(InvalidRequest, match="has no chat template: send a prompt"):
        encode(tokenizer, GenerationRequest("m", messages=(Message("user", "Hi"),)))

"""Chat templates in the tool syntax of three model families, for tiny random models.

Each teaches its family's call format the way the family's own template does (the tools in
the system or user turn, earlier calls and tool results rendered back), so the prompt path
and the parsers meet the same text a real Qwen2.5, Llama 3.1 or Mistral model sees.
"""

from __future__ import annotations

from pathlib import Path

QWEN25 = """{%- if tools %}<|im_start|>system
{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}{% else %}You are a helpful \
assistant.{% endif %}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>{% for tool in tools %}
{{ tool | tojson }}{% endfor %}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0]['role'] == 'system' %}<|im_start|>system
{{ messages[0]['content'] }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}{% continue %}{% endif %}
{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{% if message.content %}{{ message.content }}
{% endif %}{% for call in message.tool_calls %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

QWEN25_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN25_ADDED = ("<tool_call>", "</tool_call>")

LLAMA31 = """<|begin_of_text|>
{%- set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}
{%- set rest = messages[1:] if messages[0]['role'] == 'system' else messages %}
<|start_header_id|>system<|end_header_id|>

{% if tools %}Environment: ipython
{% endif %}Cutting Knowledge Date: December 2023

{{ system }}<|eot_id|>
{%- for message in rest %}
{%- if loop.first and tools %}<|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its proper \
arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its \
value}. Do not use variables.

{% for tool in tools %}{{ tool | tojson }}

{% endfor %}{{ message.content }}<|eot_id|>
{%- elif message.role == 'assistant' and message.tool_calls %}\
<|start_header_id|>assistant<|end_header_id|>

{% for call in message.tool_calls %}{"name": "{{ call.function.name }}", "parameters": \
{{ call.function.arguments | tojson }}}{% endfor %}<|eom_id|>
{%- elif message.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>

{{ message.content }}<|eot_id|>
{%- else %}<|start_header_id|>{{ message.role }}<|end_header_id|>

{{ message.content }}<|eot_id|>
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}"""

LLAMA31_SPECIALS = (
    "<|finetune_right_pad_id|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
)

MISTRAL = """{%- for message in messages %}
{%- if message.role == 'user' %}
{%- if tools and loop.last %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}\
[INST]{{ message.content }}[/INST]
{%- elif message.role == 'assistant' and message.tool_calls %}[TOOL_CALLS][\
{% for call in message.tool_calls %}{"name": "{{ call.function.name }}", "arguments": \
{{ call.function.arguments | tojson }}}{% if not loop.last %}, {% endif %}{% endfor %}]</s>
{%- elif message.role == 'tool' %}[TOOL_RESULTS]{"content": {{ message.content | tojson }}}\
[/TOOL_RESULTS]
{%- elif message.role == 'assistant' %}{{ message.content }}</s>
{%- endif %}
{%- endfor %}"""

MISTRAL_SPECIALS = (
    "<pad>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_CALLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
)


def build_qwen25(target: Path) -> Path:
    from jupyter_llm.engine.local.tiny import build_tiny_llama

    return build_tiny_llama(
        target,
        chat_template=QWEN25,
        special_tokens=QWEN25_SPECIALS,
        added_tokens=QWEN25_ADDED,
        eos_token="<|im_end|>",
    )


def build_llama31(target: Path) -> Path:
    from jupyter_llm.engine.local.tiny import build_tiny_llama

    return build_tiny_llama(
        target, chat_template=LLAMA31, special_tokens=LLAMA31_SPECIALS, eos_token="<|eot_id|>"
    )


def build_mistral(target: Path) -> Path:
    from jupyter_llm.engine.local.tiny import build_tiny_llama

    return build_tiny_llama(
        target, chat_template=MISTRAL, special_tokens=MISTRAL_SPECIALS, eos_token="</s>"
    )

"""An editor's completion request as a model prompt.

Three forms, by what the model can do:

* fill-in-the-middle (the model has FIM tokens): the text before and after the cursor in
  the model's trained order; it writes only what goes between;
* instruction (a chat model without FIM): the code with a cursor marker, and a system
  message that asks for the text at the marker only;
* continuation (neither): the text before the cursor, for the model to go on from.

Earlier cells go first in every form, oldest first, as the code the cursor's code follows.
"""

from __future__ import annotations

from dataclasses import replace

from ..types import CompletionInput, GenerationRequest, Message
from .fim import FimTokens

__all__ = ["COMPLETION_MAX_TOKENS", "COMPLETION_TEMPERATURE", "CURSOR", "INSTRUCTION", "assemble"]

#: A completion's defaults where the request leaves them out: a suggestion is a few lines,
#: and the likeliest text rather than a varied one.
COMPLETION_MAX_TOKENS = 64
COMPLETION_TEMPERATURE = 0.2

CURSOR = "<CURSOR>"
INSTRUCTION = (
    "You are a code completion engine inside an editor. You get {language} code with a "
    f"{CURSOR} marker. Reply with only the text to insert at {CURSOR}: no explanation, no "
    "markdown fences, and do not repeat the code before or after the marker."
)
_SEPARATOR = "\n\n"  # between cells: a notebook's cells read as one file


def assemble(request: GenerationRequest, fim: FimTokens | None, chat: bool) -> GenerationRequest:
    """The request with its prompt (FIM, continuation) or messages (instruction) filled in.

    A request that already has one (assembled before, recovered after a restart) is kept.
    """
    completion = request.completion
    if completion is None or request.prompt is not None or request.messages is not None:
        return request
    before = _with_context(completion)
    if fim is not None:
        return replace(request, prompt=fim.render(before, completion.suffix))
    if not chat:
        return replace(request, prompt=before)
    return replace(request, messages=_instruction(completion))


def _with_context(completion: CompletionInput) -> str:
    cells = [cell for cell in completion.context if cell.strip()]
    return _SEPARATOR.join([*cells, completion.prefix])


def _instruction(completion: CompletionInput) -> tuple[Message, ...]:
    language = completion.language or "source"
    parts = []
    cells = [cell for cell in completion.context if cell.strip()]
    if cells:
        parts.append("Earlier cells, for context:\n" + _SEPARATOR.join(cells))
    parts.append(f"Complete this {language} code at {CURSOR}:\n")
    code = f"{completion.prefix}{CURSOR}{completion.suffix}"
    return (
        Message("system", INSTRUCTION.format(language=language)),
        Message("user", _SEPARATOR.join(parts) + code),
    )

"""Constrained decoding: a JSON schema becomes a per-row token mask, through llguidance.

Why llguidance and not xgrammar: both compute a mask far faster than a decode step takes;
llguidance compiles a schema several times faster and is one wheel without dependencies,
where xgrammar brings triton into a CPU install (the measurements are in the commit that
chose it).

``Grammars`` lives in a worker, one per engine. It wraps the tokenizer once, as the engine
loads (for a large vocabulary that takes seconds, which the first constrained request would
otherwise cost every row of its batch), and keeps a compiled matcher per schema text; each
request gets a copy of it, so a schema used again costs a copy, not a compile.
``Constraint`` is one row's matcher and its mask. The mask is applied here, not with
``llguidance.torch.apply_token_bitmask_inplace``: that one is ``torch.compile``d, which needs a
C++ compiler on a CPU and compiles on the first constrained request, stalling the batch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = ["Constraint", "Grammars"]

_KEEP = 64  # compiled schemas kept per engine, least recently used out first


class Grammars:
    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: set[int]) -> None:
        self._tokenizer_source = tokenizer
        self._vocab_size = vocab_size
        self._eos = sorted(eos_ids)
        self._tokenizer: Any = None  # built on first use: most engines never need it
        self._compiled: OrderedDict[str, Any] = OrderedDict()

    def warm(self) -> None:
        """Wrap the tokenizer now (from scratch: a benchmark times it)."""
        self._tokenizer = None
        self._llg_tokenizer()

    def constraint(self, schema: str) -> Constraint:
        """A fresh matcher for ``schema`` (canonical JSON text); raises ValueError when the
        schema is not one llguidance can enforce."""
        import llguidance

        matcher = self._compiled.get(schema)
        if matcher is None:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(
                schema, defaults={"whitespace_flexible": False}
            )
            errors = llguidance.LLMatcher.validate_grammar(grammar, self._llg_tokenizer())
            if errors:
                raise ValueError(f"the JSON schema cannot be enforced: {errors}")
            matcher = llguidance.LLMatcher(self._llg_tokenizer(), grammar)
            if matcher.is_error():
                raise ValueError(f"the JSON schema cannot be enforced: {matcher.get_error()}")
            self._compiled[schema] = matcher
            while len(self._compiled) > _KEEP:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(schema)
        return Constraint(matcher.deep_copy(), self._vocab_size)

    def _llg_tokenizer(self) -> Any:
        if self._tokenizer is None:
            import llguidance.hf

            self._tokenizer = llguidance.hf.from_tokenizer(
                self._tokenizer_source, n_vocab=self._vocab_size, eos_token=self._eos
            )
        return self._tokenizer


class Constraint:
    """One row's grammar state: the mask of tokens it allows next, and its advance."""

    __slots__ = ("_bitmask", "_matcher")

    def __init__(self, matcher: Any, vocab_size: int) -> None:
        import llguidance.torch

        self._matcher = matcher
        self._bitmask = llguidance.torch.allocate_token_bitmask(1, vocab_size)

    def mask(self, logits: torch.Tensor) -> None:
        """Send every token the grammar refuses to -inf, in place (``logits``: [vocab])."""
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        # Bit i of 32-bit word w allows token 32w + i: as little-endian bytes, that is bit
        # j of byte b for token 8b + j, which is what unpackbits(bitorder="little") lists.
        # Inverted first, the unpacked bytes (0 or 1) are the refused tokens as booleans.
        refused = np.unpackbits(np.invert(self._bitmask.numpy().view(np.uint8)), bitorder="little")
        mask = torch.from_numpy(refused[: logits.shape[-1]]).view(torch.bool)
        logits.masked_fill_(mask.to(logits.device), float("-inf"))

    def advance(self, token_id: int) -> None:
        if not self._matcher.is_stopped():
            self._matcher.consume_token(token_id)

    @property
    def done(self) -> bool:
        """The grammar is complete and takes nothing more (not even an end-of-sequence)."""
        return bool(self._matcher.is_stopped())

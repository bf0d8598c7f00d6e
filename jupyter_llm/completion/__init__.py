"""Inline completions: prompt assembly and reply trimming, pure and torch-free.

The pool uses these for jobs whose request carries a ``CompletionInput``: ``assemble`` builds
the prompt once the model's tokenizer is known, ``Trimmer`` cuts the reply as it streams.
"""

from .fim import AUTO, NONE, PRESETS, FimTokens, detect, resolve
from .prompt import COMPLETION_MAX_TOKENS, COMPLETION_TEMPERATURE, CURSOR, assemble
from .trim import Trimmer, trim

__all__ = [
    "AUTO",
    "COMPLETION_MAX_TOKENS",
    "COMPLETION_TEMPERATURE",
    "CURSOR",
    "NONE",
    "PRESETS",
    "FimTokens",
    "Trimmer",
    "assemble",
    "detect",
    "resolve",
    "trim",
]

"""Fill-in-the-middle tokens: the named presets, and which one a tokenizer shows.

A FIM model is trained on ``<prefix-token> before <suffix-token> after <middle-token>`` and
then writes what goes between. Which three strings it uses differs by family; a model entry
names them (``fim: starcoder`` or ``fim: {prefix, suffix, middle}``) or, by default, the
pool looks for a preset's tokens among the tokenizer's special tokens.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["AUTO", "NONE", "PRESETS", "FimTokens", "detect", "resolve"]

AUTO = "auto"  # a preset whose tokens the tokenizer has, else the instruction form
NONE = "none"  # never fill in the middle: the instruction form


@dataclass(frozen=True, slots=True)
class FimTokens:
    prefix: str
    suffix: str
    middle: str

    def render(self, before: str, after: str) -> str:
        """Prefix-suffix-middle order, the one every preset here was trained on."""
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


PRESETS: dict[str, FimTokens] = {
    "starcoder": FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "qwen": FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    # Code Llama's reference prompt puts a space around its markers.
    "codellama": FimTokens("<PRE> ", " <SUF>", " <MID>"),
    # DeepSeek Coder's markers use a full-width bar (U+FF5C) and a lower block (U+2581).
    "deepseek": FimTokens(
        "<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"
    ),
}


def detect(special_tokens: Collection[str]) -> FimTokens | None:
    """The preset whose three markers are all among ``special_tokens``, if one is."""
    for tokens in PRESETS.values():
        markers = (tokens.prefix.strip(), tokens.suffix.strip(), tokens.middle.strip())
        if all(marker in special_tokens for marker in markers):
            return tokens
    return None


def resolve(setting: str | FimTokens, special_tokens: Collection[str]) -> FimTokens | None:
    """What a model entry's ``fim`` means for a tokenizer: tokens, or None (instruction)."""
    if isinstance(setting, FimTokens):
        return setting
    if setting == NONE:
        return None
    if setting == AUTO:
        return detect(special_tokens)
    return PRESETS[setting]

"""What every LLM backend offers: one chat completion whose answer is JSON of a given schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from knnie.errors import KnnieError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


class LLMError(KnnieError):
    """An LLM that cannot be loaded or reached (not a bad answer: those are dropped and counted)."""


@dataclass(frozen=True)
class Completion:
    """The text an LLM answered and why it stopped ("stop", or "length" when max_tokens cut it short)."""

    text: str
    finish_reason: str

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class LLM(Protocol):
    """A chat model asked for JSON that follows `schema` (a JSON schema): grammar-constrained where the
    backend can, else asked in the prompt; callers validate the answer either way."""

    name: str

    def complete_json(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, temperature: float,
                      seed: int) -> Completion: ...

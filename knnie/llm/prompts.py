"""Prompt templates: text files beside this module (`prompts/NAME.system.txt`, `prompts/NAME.user.txt`),
filled with `string.Template` ($name), so a prompt reads and changes as text, not as strings in code."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

from knnie.llm.base import Message


@cache
def _template(name: str) -> Template:
    return Template(resources.files("knnie.llm").joinpath("prompts", name).read_text(encoding="utf-8"))


def messages(prompt: str, /, **values: str) -> list[Message]:
    """The system and user messages of `prompt`, with `values` put in (a missing value is a KeyError)."""
    return [{"role": role, "content": _template(f"{prompt}.{role}.txt").substitute(values).strip()}
            for role in ("system", "user")]

"""Tokenisation with character offsets, shared by every reader and task.

A word is a run of grapheme clusters (a letter with its combining marks, a Devanagari syllable)
that start with a word character; any other visible cluster (a ZWJ emoji sequence, a flag, a
punctuation mark, a combining mark after a space) is a token of its own. No token splits a
character (a grapheme cluster), so offsets always fall between characters.
"""

from __future__ import annotations

import itertools

import regex

from knnie.errors import DataError

_TOKEN = regex.compile(r"(?:(?=\w)\X)+|(?=[^\w\s])\X|(?=\s)\X(?<!\s)")
_CHARACTER = regex.compile(r"\X")


def tokenize_with_offsets(text: str, cuts: tuple[int, ...] = ()) -> tuple[list[str], list[tuple[int, int]]]:
    """Split text into word/punctuation tokens with character offsets; no token splits a character
    (a grapheme cluster).

    `cuts` are character positions that must fall on token boundaries (entity edges),
    so that every entity span maps to whole tokens; they must not fall inside a character
    (`check_whole_characters`).
    """
    bounds = sorted({0, len(text), *cuts})
    tokens, offsets = [], []
    for a, b in itertools.pairwise(bounds):
        for m in _TOKEN.finditer(text, a, b):
            tokens.append(m.group())
            offsets.append((m.start(), m.end()))
    return tokens, offsets


def characters_with_offsets(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Every visible character (grapheme cluster) with its offsets: the tokens of character-tokenised
    languages such as Chinese."""
    offsets = [m.span() for m in _CHARACTER.finditer(text) if not m.group().isspace()]
    return [text[a:b] for a, b in offsets], offsets


def split_text(text: str, chars: bool = False) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and punctuation (`tokenize_with_offsets`), or characters for models trained on
    character-tokenised text (`characters_with_offsets`), with their offsets."""
    return characters_with_offsets(text) if chars else tokenize_with_offsets(text)


def check_whole_characters(text: str, spans: dict[str, tuple[int, int]], source: str | None = None) -> None:
    """Refuse a span whose edge falls inside a character (between a letter and its accent, inside a
    ZWJ emoji sequence or a flag): no token sequence covers it exactly."""
    edges = {m.start() for m in _CHARACTER.finditer(text)}
    for name, (start, end) in spans.items():
        for pos, edge in ((start, "starts"), (end, "ends")):
            if 0 < pos < len(text) and pos not in edges:
                raise DataError(f"span [{start}, {end}) {edge} inside a character (at {pos})", path=source,
                                field=name)

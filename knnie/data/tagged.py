"""Readers for tagged (NER) data; each yields canonical `TaggedSentence`s with BIO tags.

* CoNLL-style column files: one token a line, the token in the first column and its tag
  in the last, columns split on spaces or tabs, a blank line between sentences,
  ``-DOCSTART-`` lines skipped. Every token line must have as many columns as the first.
* JSONL: ``{"tokens": [...], "tags": [...]}`` one sentence a line.

BIOES input (S-X, E-X) is read as BIO (B-X, I-X): the entity spans are the same, and the
model, the memory and the scorer then share one tag scheme.

Unlabelled input for prediction (`read_sentences`): a ``.jsonl`` file of ``{"text"}`` or
``{"tokens"}`` records, or plain text with one sentence per non-blank line.
"""

from __future__ import annotations

import re
from pathlib import Path

from knnie.data.files import FilePart, numbered_lines, parse_json, read_text
from knnie.data.schema import Span, TaggedSentence
from knnie.data.tokenize import split_text
from knnie.errors import DataError

_TAG = re.compile(r"^(O|[BIES]-.+)$")
_TO_BIO = {"B": "B", "I": "I", "S": "B", "E": "I"}


def bio_tag(tag: str, path: str | Path | None, line: int | None) -> str:
    """The BIO form of a BIO/BIOES tag; anything else is an error naming file and line."""
    if not _TAG.match(tag):
        raise DataError(f"tag '{tag}' is neither O nor B-/I-/E-/S- followed by a type", path=path, line=line,
                        field="tag")
    return tag if tag == "O" else f"{_TO_BIO[tag[0]]}-{tag[2:]}"


def entity_type(tag: str) -> str | None:
    """X of B-X or I-X; None for O."""
    return None if tag == "O" else tag[2:]


def bio_spans(tags: list[str]) -> list[Span]:
    """The entities of one sentence's BIO tags, read as conlleval and seqeval (default mode) read
    them: an I-X that starts a sentence or follows O or a tag of another type starts a new X entity;
    B-X always starts one; I-X after B-X/I-X continues it. So every tag sequence gives valid spans."""
    spans: list[Span] = []
    start, current = 0, None
    for i, tag in enumerate([*tags, "O"]):
        typ = entity_type(tag)
        if current is not None and (typ != current or tag.startswith("B-")):
            spans.append(Span(start, i, current))
            current = None
        if typ is not None and current is None:
            start, current = i, typ
    return spans


def bio_tags(spans: list[Span], n: int, source: str | None = None) -> list[str]:
    """The BIO tags of n tokens holding these entity spans; spans that overlap or have no type
    have no BIO tags and are refused."""
    tags = ["O"] * n
    for s in sorted(spans, key=lambda s: s.start):
        if not s.type:
            problem = "has no type"
        elif not 0 <= s.start < s.end <= n:
            problem = f"is out of range for {n} tokens"
        elif any(t != "O" for t in tags[s.start : s.end]):
            problem = "overlaps another entity"
        else:
            tags[s.start : s.end] = [f"B-{s.type}"] + [f"I-{s.type}"] * (s.end - s.start - 1)
            continue
        raise DataError(f"entity [{s.start}, {s.end}) {problem}: BIO tags cannot hold it", path=source,
                        field="entities")
    return tags


def read_tagged(path: str | Path | FilePart) -> list[TaggedSentence]:
    """Every tagged sentence of a column file or a {tokens, tags} JSONL file (or of a part of one,
    `split_file`: what one worker of a sharded build reads)."""
    text = read_text(path)
    first = path.first_line if isinstance(path, FilePart) else 1
    path = Path(path.path if isinstance(path, FilePart) else path)
    if not text.strip():
        raise DataError("file is empty", path=path)
    sentences = _read_jsonl(path, text, first) if text.lstrip().startswith("{") else _read_columns(path, text, first)
    if not sentences:
        raise DataError("no sentences found", path=path)
    return sentences


def _read_columns(path: Path, text: str, first: int = 1) -> list[TaggedSentence]:
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    width = None

    def flush() -> None:
        if tokens:
            sentences.append(TaggedSentence(tokens.copy(), tags.copy(), source=str(path), lines=lines.copy()))
            tokens.clear(), tags.clear(), lines.clear()

    for lineno, line in numbered_lines(text, first):
        cols = line.split()
        if not cols:
            flush()
            continue
        if cols[0] == "-DOCSTART-":
            flush()
            continue
        if width is None:
            if len(cols) < 2:
                raise DataError("a token line needs at least two columns (token ... tag)", path=path, line=lineno)
            width = len(cols)
        if len(cols) != width:
            raise DataError(f"expected {width} columns (as on the first token line), found {len(cols)}",
                            path=path, line=lineno)
        tokens.append(cols[0])
        tags.append(bio_tag(cols[-1], path, lineno))
        lines.append(lineno)
    flush()
    return sentences


def _read_jsonl(path: Path, text: str, first: int = 1) -> list[TaggedSentence]:
    sentences = []
    for lineno, line in numbered_lines(text, first):
        if not line.strip():
            continue
        rec = _json_object(line, path, lineno)
        tokens, tags = rec.get("tokens"), rec.get("tags")
        for name, value in (("tokens", tokens), ("tags", tags)):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise DataError("needs a list of strings", path=path, line=lineno, field=name)
        if not tokens:
            raise DataError("empty sentence", path=path, line=lineno, field="tokens")
        if len(tags) != len(tokens):
            raise DataError(f"{len(tags)} tags for {len(tokens)} tokens", path=path, line=lineno, field="tags")
        sentences.append(TaggedSentence(list(tokens), [bio_tag(t, path, lineno) for t in tags], source=str(path),
                                        lines=[lineno] * len(tokens)))
    return sentences


def sentence_from_text(text: str, chars: bool = False, source: str | None = None,
                       line: int | None = None) -> TaggedSentence:
    """Tokenise raw text into words and punctuation (or into characters, for models trained
    on character-tokenised languages), keeping character offsets; a character is a grapheme
    cluster, so an accent or a ZWJ emoji sequence stays whole."""
    tokens, offsets = split_text(text, chars)
    if not tokens:
        raise DataError("empty sentence", path=source, line=line, field="text")
    return TaggedSentence(tokens, None, text, offsets, source, [line] * len(tokens) if line else None)


def read_sentences(path: str | Path, chars: bool = False) -> list[TaggedSentence]:
    """Unlabelled sentences: JSONL of {"text"} or {"tokens"}, or one sentence per non-blank line."""
    path = Path(path)
    text = read_text(path)
    out = []
    jsonl = path.suffix == ".jsonl"
    for lineno, line in numbered_lines(text):
        if not line.strip():
            continue
        if not jsonl:
            out.append(sentence_from_text(line, chars, str(path), lineno))
            continue
        rec = _json_object(line, path, lineno)
        if isinstance(rec.get("text"), str):
            out.append(sentence_from_text(rec["text"], chars, str(path), lineno))
        elif isinstance(rec.get("tokens"), list) and all(isinstance(t, str) for t in rec["tokens"]):
            if not rec["tokens"]:
                raise DataError("empty sentence", path=path, line=lineno, field="tokens")
            out.append(TaggedSentence(list(rec["tokens"]), None, source=str(path), lines=[lineno] * len(rec["tokens"])))
        else:
            raise DataError("needs 'text' (a string) or 'tokens' (a list of strings)", path=path, line=lineno)
    if not out:
        raise DataError("no sentences found", path=path)
    return out


def _json_object(line: str, path: Path, lineno: int) -> dict:
    rec = parse_json(line, path, lineno)
    if not isinstance(rec, dict):
        raise DataError("record is not a JSON object", path=path, line=lineno)
    return rec

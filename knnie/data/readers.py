"""Readers for the relation formats users have; each yields canonical RelationExamples.

Formats are recognised per record, so a user never names them:

* FewRel JSON: ``{relation: [{"tokens", "h": [name, id, [[idx, ...]]], "t": ...}]}``
* OpenNRE JSONL (Wiki80, SemEval): ``{"token", "h": {"pos": [s, e)}, "t": ..., "relation"}``
* DyGIE/PURE documents (SciERC): ``{"sentences", "ner", "relations"}``; every ordered pair
  of gold entities in a sentence is an example, unrelated pairs get ``NO_RELATION``
* TACRED-style: ``{"text", "subj_start", "subj_end", "obj_start", "obj_end", ...}`` with
  character offsets, end exclusive (or ``"token"`` with TACRED's inclusive token offsets)
* plain JSONL: ``{"text", "head": {"start", "end"[, "type"]}, "tail": ..., ["label"]}``
  with character offsets, end exclusive.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from knnie.data.schema import RelationExample, Span
from knnie.errors import DataError

NO_RELATION = "no_relation"
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize_with_offsets(text: str, cuts: tuple[int, ...] = ()) -> tuple[list[str], list[tuple[int, int]]]:
    """Split text into word/punctuation tokens with character offsets.

    `cuts` are character positions that must fall on token boundaries (entity edges),
    so that every entity span maps to whole tokens.
    """
    bounds = sorted({0, len(text), *cuts})
    tokens, offsets = [], []
    for a, b in itertools.pairwise(bounds):
        for m in _TOKEN.finditer(text, a, b):
            tokens.append(m.group())
            offsets.append((m.start(), m.end()))
    return tokens, offsets


def example_from_text(
    text: str, head: tuple[int, int, str | None], tail: tuple[int, int, str | None],
    label: str | None = None, source: str | None = None,
) -> RelationExample:
    """Build an example from raw text and character spans (start, end exclusive, type).
    Spans out of the text, empty, or overlapping each other are refused, as the readers refuse them."""
    for name, (start, end, _) in (("head", head), ("tail", tail)):
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise DataError(f"span [{start}, {end}) out of range for a text of {len(text)} characters",
                            path=source, field=name)
    _no_overlap(head[:2], tail[:2], source, None)
    tokens, offsets = tokenize_with_offsets(text, (head[0], head[1], tail[0], tail[1]))

    def to_span(start: int, end: int, typ: str | None, name: str) -> Span:
        idx = [i for i, (a, b) in enumerate(offsets) if a >= start and b <= end]
        if not idx:
            raise DataError(f"span [{start}, {end}) covers no word", path=source, field=name)
        return Span(idx[0], idx[-1] + 1, typ)

    return RelationExample(
        tokens, to_span(*head, "head"), to_span(*tail, "tail"), label, text, offsets, source
    )


def read_relations(path: str | Path, *, negatives: bool = True) -> list[RelationExample]:
    """Read every relation example of a file in any supported format.

    `negatives` only matters for DyGIE documents: whether unrelated entity pairs become
    ``NO_RELATION`` examples (PURE's setting) or are left out.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    return list(_iter_records(path, negatives))


def _iter_records(path: Path, negatives: bool) -> Iterator[RelationExample]:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError("file is empty", path=path)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    fewrel = isinstance(whole, dict) and whole and "sentences" not in whole  # one DyGIE doc is not FewRel
    if fewrel and all(isinstance(v, list) for v in whole.values()):
        for label, instances in whole.items():  # FewRel
            for i, inst in enumerate(instances):
                yield _parse(inst, path, f"{label}[{i}]", negatives, label=label)
        return
    if isinstance(whole, list):
        for i, rec in enumerate(whole):
            yield from _checked(_parse_any(rec, path, f"record {i}", negatives), path, f"record {i}")
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON ({e.msg}, column {e.colno})", path=path, line=lineno) from e
        yield from _checked(_parse_any(rec, path, lineno, negatives), path, lineno)


def _parse_any(rec: Any, path: Path, where: int | str, negatives: bool) -> Iterator[RelationExample]:
    if isinstance(rec, dict) and "sentences" in rec:
        yield from _dygie(rec, path, where, negatives)
    else:
        yield _parse(rec, path, where, negatives)


def _checked(examples: Iterator[RelationExample], path: Path, where: int | str) -> Iterator[RelationExample]:
    for ex in examples:
        _validate(ex, path, where)
        yield ex


def _get(rec: dict, key: str, path: Path, where: int | str) -> Any:
    if key not in rec:
        raise DataError("missing field", path=path, line=where, field=key)
    return rec[key]


def _parse(rec: Any, path: Path, where: int | str, negatives: bool, label: str | None = None) -> RelationExample:
    if not isinstance(rec, dict):
        raise DataError("record is not a JSON object", path=path, line=where)
    src = f"{path}:{where}"
    try:
        if "tokens" in rec and isinstance(rec.get("h"), list):  # FewRel instance
            ex = RelationExample(
                list(rec["tokens"]), _fewrel_span(rec["h"], "h", path, where),
                _fewrel_span(rec["t"], "t", path, where), label, source=src,
            )
        elif "token" in rec and isinstance(rec.get("h"), dict):  # OpenNRE
            h, t = _get(rec, "h", path, where), _get(rec, "t", path, where)
            ex = RelationExample(
                list(rec["token"]), _pos_span(h, "h", path, where), _pos_span(t, "t", path, where),
                rec.get("relation"), source=src,
            )
        elif "subj_start" in rec:  # TACRED style
            ex = _tacred(rec, path, where, src)
        elif "head" in rec or "text" in rec:  # plain JSONL
            text = _get(rec, "text", path, where)
            spans = []
            for name in ("head", "tail"):
                s = _get(rec, name, path, where)
                if not isinstance(s, dict) or not isinstance(s.get("start"), int) or not isinstance(s.get("end"), int):
                    raise DataError("needs integer 'start' and 'end'", path=path, line=where, field=name)
                if not 0 <= s["start"] < s["end"] <= len(text):
                    raise DataError(
                        f"span [{s['start']}, {s['end']}) out of range for a text of {len(text)} characters",
                        path=path, line=where, field=name,
                    )
                spans.append((s["start"], s["end"], s.get("type")))
            _no_overlap(spans[0][:2], spans[1][:2], path, where)
            ex = example_from_text(text, spans[0], spans[1], rec.get("label"), src)
        else:
            raise DataError(
                "unrecognised record: expected plain {text, head, tail}, OpenNRE {token, h, t}, "
                "FewRel, TACRED-style or DyGIE fields", path=path, line=where,
            )
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise DataError(f"malformed record ({type(e).__name__}: {e})", path=path, line=where) from e
    ex.meta = {k: rec[k] for k in ("id", "doc_key") if k in rec}
    return ex


def _fewrel_span(ent: list, name: str, path: Path, where: int | str) -> Span:
    idx = ent[2][0]
    if not idx:
        raise DataError("empty mention", path=path, line=where, field=name)
    return Span(min(idx), max(idx) + 1)


def _pos_span(ent: dict, name: str, path: Path, where: int | str) -> Span:
    pos = ent.get("pos")
    if not (isinstance(pos, list) and len(pos) == 2):
        raise DataError("needs 'pos': [start, end)", path=path, line=where, field=f"{name}.pos")
    return Span(int(pos[0]), int(pos[1]), ent.get("type"))


def _tacred(rec: dict, path: Path, where: int | str, src: str) -> RelationExample:
    keys = ("subj_start", "subj_end", "obj_start", "obj_end")
    s0, s1, o0, o1 = (_get(rec, k, path, where) for k in keys)
    st, ot = rec.get("subj_type"), rec.get("obj_type")
    if "text" in rec:
        text = rec["text"]
        for k, a, b in (("subj", s0, s1), ("obj", o0, o1)):
            if not 0 <= a < b <= len(text):
                raise DataError(f"span [{a}, {b}) out of range", path=path, line=where, field=f"{k}_start")
        _no_overlap((s0, s1), (o0, o1), path, where)
        return example_from_text(text, (s0, s1, st), (o0, o1, ot), rec.get("relation"), src)
    tokens = _get(rec, "token", path, where)  # original TACRED: token offsets, end inclusive
    return RelationExample(list(tokens), Span(s0, s1 + 1, st), Span(o0, o1 + 1, ot), rec.get("relation"), source=src)


def _dygie(doc: dict, path: Path, where: int | str, negatives: bool) -> Iterator[RelationExample]:
    sentences = _get(doc, "sentences", path, where)
    ners = _get(doc, "ner", path, where)
    rels = doc.get("relations") or [[] for _ in sentences]
    offset = 0
    for si, tokens in enumerate(sentences):
        ents = [Span(s - offset, e - offset + 1, t) for s, e, t in ners[si]]
        gold = {(hs - offset, he - offset + 1, ts - offset, te - offset + 1): r for hs, he, ts, te, r in rels[si]}
        for h in ents:
            for t in ents:
                if h == t or h.overlaps(t):
                    continue
                label = gold.get((h.start, h.end, t.start, t.end))
                if label is None and not negatives:
                    continue
                yield RelationExample(
                    list(tokens), h, t, label or NO_RELATION, source=f"{path}:{where}",
                    meta={"doc_key": doc.get("doc_key"), "sentence": si},
                )
        offset += len(tokens)


def _no_overlap(a: tuple[int, int], b: tuple[int, int], path: Path, where: int | str) -> None:
    if a[0] < b[1] and b[0] < a[1]:
        raise DataError(f"head {list(a)} and tail {list(b)} overlap", path=path, line=where, field="tail")


def _validate(ex: RelationExample, path: Path, where: int | str) -> None:
    n = len(ex.tokens)
    if n == 0:
        raise DataError("sentence has no tokens", path=path, line=where, field="tokens")
    for name, s in (("head", ex.head), ("tail", ex.tail)):
        if not 0 <= s.start < s.end <= n:
            raise DataError(
                f"span [{s.start}, {s.end}) out of range for {n} tokens", path=path, line=where, field=name
            )
    if ex.head.overlaps(ex.tail):
        raise DataError(
            f"head [{ex.head.start}, {ex.head.end}) and tail [{ex.tail.start}, {ex.tail.end}) overlap",
            path=path, line=where, field="tail",
        )

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

DyGIE documents are read as `Document`s (one per sentence) whose entity pairs give the examples;
`read_documents` returns those documents themselves, or documents of plain text.

Every value is type-checked: offsets are integers (``true`` is not), labels and entity types
strings (or absent), tokens lists of strings; anything else is a `DataError` naming the file,
the line or record, and the field. Character offsets must not fall inside a character (a letter
and its accents, a ZWJ emoji sequence, a flag).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from knnie.data.document import Document, Relation
from knnie.data.files import FilePart, numbered_lines, parse_json, read_text
from knnie.data.schema import RelationExample, Span
from knnie.data.tokenize import check_whole_characters, tokenize_with_offsets
from knnie.errors import DataError


def example_from_text(
    text: str, head: tuple[int, int, str | None], tail: tuple[int, int, str | None],
    label: str | None = None, source: str | None = None,
) -> RelationExample:
    """Build an example from raw text and character spans (start, end exclusive, type).
    Spans out of the text, empty, or overlapping each other are refused, as the readers refuse them."""
    for name, (start, end, _) in (("head", head), ("tail", tail)):
        if not (_is_int(start) and _is_int(end) and 0 <= start < end <= len(text)):
            raise DataError(f"span [{start}, {end}) out of range for a text of {len(text)} characters",
                            path=source, field=name)
    _no_overlap(head[:2], tail[:2], source, None)
    check_whole_characters(text, {"head": head[:2], "tail": tail[:2]}, source)
    tokens, offsets = tokenize_with_offsets(text, (head[0], head[1], tail[0], tail[1]))

    def to_span(start: int, end: int, typ: str | None, name: str) -> Span:
        idx = [i for i, (a, b) in enumerate(offsets) if a >= start and b <= end]
        if not idx:
            raise DataError(f"span [{start}, {end}) covers no word", path=source, field=name)
        return Span(idx[0], idx[-1] + 1, typ)

    return RelationExample(
        tokens, to_span(*head, "head"), to_span(*tail, "tail"), label, text, offsets, source
    )


def read_relations(path: str | Path | FilePart, *, negatives: bool = True) -> list[RelationExample]:
    """Read every relation example of a file in any supported format (or of a part of a JSON lines
    file, `split_file`: what one worker of a sharded build reads).

    `negatives` only matters for DyGIE documents: whether unrelated entity pairs become
    ``NO_RELATION`` examples (PURE's setting) or are left out.
    """
    first = path.first_line if isinstance(path, FilePart) else 1
    text = _read_some(path)
    return list(_iter_records(Path(path.path if isinstance(path, FilePart) else path), text, negatives, first))


def read_documents(path: str | Path, chars: bool = False) -> list[Document]:
    """The documents of a file: in a .json or .jsonl file DyGIE/PURE documents (one per sentence,
    with its entities and relations) or {"text"[, "id", "doc_key"]} records; in any other file
    one document per non-blank line of plain text. Text is split into words and punctuation (into
    characters with `chars`, for a model trained on character-tokenised text)."""
    path = Path(path)
    text = _read_some(path)
    if path.suffix not in (".json", ".jsonl"):
        return [Document.from_text(line, chars, f"{path}:{n}") for n, line in numbered_lines(text) if line.strip()]
    documents = []
    for where, rec in _json_records(path, text, _whole_json(text, path)):
        if isinstance(rec, dict) and "sentences" in rec:
            documents += _dygie(rec, path, where)
        elif isinstance(rec, dict) and "text" in rec and not rec.keys() & {"head", "tail", "subj_start", "obj_start"}:
            document = Document.from_text(_str(rec["text"], path, where, "text", optional=False), chars,
                                          f"{path}:{where}")
            document.meta = {k: rec[k] for k in ("id", "doc_key") if k in rec}
            documents.append(document)
        else:
            raise DataError("expected a DyGIE document {sentences, ner[, relations]} or a {text} record (relation "
                            "examples are read by read_relations)", path=path, line=where)
    return documents


def _read_some(path: Path | FilePart) -> str:
    """The text of a file (or a part of one) that holds something."""
    text = read_text(path)
    if not text.strip():
        raise DataError("file is empty", path=path.path if isinstance(path, FilePart) else path)
    return text


def _iter_records(path: Path, text: str, negatives: bool, first: int = 1) -> Iterator[RelationExample]:
    whole = _whole_json(text, path)
    fewrel = isinstance(whole, dict) and whole and "sentences" not in whole  # one DyGIE doc is not FewRel
    if fewrel and all(isinstance(v, list) for v in whole.values()):
        for label, instances in whole.items():  # FewRel
            for i, inst in enumerate(instances):
                ex = _parse(inst, path, f"{label}[{i}]", label=label)
                _validate(ex, path, f"{label}[{i}]")
                yield ex
        return
    for where, rec in _json_records(path, text, whole, first):
        yield from _checked(_parse_any(rec, path, where, negatives), path, where)


def _json_records(path: Path, text: str, whole: Any, first: int = 1) -> Iterator[tuple[int | str, Any]]:
    """(where, record) of a JSON file: the items of a top-level list ("record i"), or one JSON value
    per non-blank line (its line number; the text's first line is line `first`). `whole` is the
    file parsed as one value, or None."""
    if isinstance(whole, list):
        yield from ((f"record {i}", rec) for i, rec in enumerate(whole))
        return
    for lineno, line in numbered_lines(text, first):
        if line.strip():
            yield lineno, parse_json(line, path, lineno)


def _whole_json(text: str, path: Path) -> Any:
    """The file parsed as one JSON value, or None when it is not one (JSON lines)."""
    try:
        return parse_json(text, path)
    except DataError:
        return None


def _parse_any(rec: Any, path: Path, where: int | str, negatives: bool) -> Iterator[RelationExample]:
    if isinstance(rec, dict) and "sentences" in rec:
        for document in _dygie(rec, path, where):
            yield from document.relation_examples(negatives)
    else:
        yield _parse(rec, path, where)


def _checked(examples: Iterator[RelationExample], path: Path, where: int | str) -> Iterator[RelationExample]:
    for ex in examples:
        _validate(ex, path, where)
        yield ex


# -- typed fields: a value of the wrong JSON type is a DataError naming it ------------------
def _get(rec: dict, key: str, path: Path, where: int | str, field: str | None = None) -> Any:
    if key not in rec:
        raise DataError("missing field", path=path, line=where, field=field or key)
    return rec[key]


def _need(ok: bool, what: str, value: Any, path: Path, where: int | str, field: str) -> None:
    if not ok:
        shown = json.dumps(value, ensure_ascii=False)
        raise DataError(f"needs {what}, found {shown if len(shown) <= 40 else shown[:37] + '...'}", path=path,
                        line=where, field=field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an offset


def _int(value: Any, path: Path, where: int | str, field: str) -> int:
    _need(_is_int(value), "an integer", value, path, where, field)
    return value


def _str(value: Any, path: Path, where: int | str, field: str, optional: bool = True) -> str | None:
    """A label, an entity type or a text: a string (or absent, when optional)."""
    _need(isinstance(value, str) or (optional and value is None), "a string", value, path, where, field)
    return value


def _tokens(value: Any, path: Path, where: int | str, field: str) -> list[str]:
    ok = isinstance(value, list) and all(isinstance(t, str) for t in value)
    _need(ok, "a list of strings", value, path, where, field)
    return list(value)


def _object(value: Any, what: str, path: Path, where: int | str, field: str) -> dict:
    _need(isinstance(value, dict), f"an object {what}", value, path, where, field)
    return value


# -- the formats ------------------------------------------------------------------------------
def _parse(rec: Any, path: Path, where: int | str, label: str | None = None) -> RelationExample:
    if not isinstance(rec, dict):
        raise DataError("record is not a JSON object", path=path, line=where)
    src = f"{path}:{where}"
    if "tokens" in rec and isinstance(rec.get("h"), list):  # FewRel instance
        ex = RelationExample(
            _tokens(rec["tokens"], path, where, "tokens"), _fewrel_span(rec, "h", path, where),
            _fewrel_span(rec, "t", path, where), label, source=src,
        )
    elif "token" in rec and isinstance(rec.get("h"), dict):  # OpenNRE
        ex = RelationExample(
            _tokens(rec["token"], path, where, "token"), _pos_span(rec, "h", path, where),
            _pos_span(rec, "t", path, where), _str(rec.get("relation"), path, where, "relation"), source=src,
        )
    elif "subj_start" in rec:  # TACRED style
        ex = _tacred(rec, path, where, src)
    elif "head" in rec or "text" in rec:  # plain JSONL
        text = _str(_get(rec, "text", path, where), path, where, "text", optional=False)
        spans = []
        for name in ("head", "tail"):
            s = _object(_get(rec, name, path, where), "{start, end[, type]}", path, where, name)
            start, end = (_int(_get(s, k, path, where, f"{name}.{k}"), path, where, f"{name}.{k}")
                          for k in ("start", "end"))
            if not 0 <= start < end <= len(text):  # checked here too, to name the file and line
                raise DataError(f"span [{start}, {end}) out of range for a text of {len(text)} characters",
                                path=path, line=where, field=name)
            spans.append((start, end, _str(s.get("type"), path, where, f"{name}.type")))
        _no_overlap(spans[0][:2], spans[1][:2], path, where)
        ex = example_from_text(text, spans[0], spans[1], _str(rec.get("label"), path, where, "label"), src)
    else:
        raise DataError(
            "unrecognised record: expected plain {text, head, tail}, OpenNRE {token, h, t}, "
            "FewRel, TACRED-style or DyGIE fields", path=path, line=where,
        )
    ex.meta = {k: rec[k] for k in ("id", "doc_key") if k in rec}
    return ex


def _fewrel_span(rec: dict, name: str, path: Path, where: int | str) -> Span:
    ent = _get(rec, name, path, where)
    mentions = ent[2] if isinstance(ent, list) and len(ent) >= 3 else None
    ok = isinstance(mentions, list) and len(mentions) > 0 and isinstance(mentions[0], list)
    _need(ok, "[name, id, [[index, ...]]]", ent, path, where, name)
    idx = [_int(i, path, where, name) for i in mentions[0]]
    if not idx:
        raise DataError("empty mention", path=path, line=where, field=name)
    return Span(min(idx), max(idx) + 1)


def _pos_span(rec: dict, name: str, path: Path, where: int | str) -> Span:
    ent = _object(_get(rec, name, path, where), "{pos: [start, end)[, type]}", path, where, name)
    pos = ent.get("pos")
    if not (isinstance(pos, list) and len(pos) == 2):
        raise DataError("needs 'pos': [start, end)", path=path, line=where, field=f"{name}.pos")
    start, end = (_int(p, path, where, f"{name}.pos") for p in pos)
    return Span(start, end, _str(ent.get("type"), path, where, f"{name}.type"))


def _tacred(rec: dict, path: Path, where: int | str, src: str) -> RelationExample:
    keys = ("subj_start", "subj_end", "obj_start", "obj_end")
    s0, s1, o0, o1 = (_int(_get(rec, k, path, where), path, where, k) for k in keys)
    st, ot = (_str(rec.get(k), path, where, k) for k in ("subj_type", "obj_type"))
    label = _str(rec.get("relation"), path, where, "relation")
    if "text" in rec:
        text = _str(rec["text"], path, where, "text", optional=False)
        for k, a, b in (("subj", s0, s1), ("obj", o0, o1)):
            if not 0 <= a < b <= len(text):
                raise DataError(f"span [{a}, {b}) out of range", path=path, line=where, field=f"{k}_start")
        _no_overlap((s0, s1), (o0, o1), path, where)
        return example_from_text(text, (s0, s1, st), (o0, o1, ot), label, src)
    tokens = _tokens(_get(rec, "token", path, where), path, where, "token")  # original TACRED: ends inclusive
    return RelationExample(tokens, Span(s0, s1 + 1, st), Span(o0, o1 + 1, ot), label, source=src)


def _dygie(doc: dict, path: Path, where: int | str) -> Iterator[Document]:
    """One document per sentence of a DyGIE document, with its entities and relations."""
    sentences = _get(doc, "sentences", path, where)
    _need(isinstance(sentences, list), "a list of sentences", sentences, path, where, "sentences")
    sentences = [_tokens(s, path, where, f"sentences[{i}]") for i, s in enumerate(sentences)]
    ners = _per_sentence(_get(doc, "ner", path, where), len(sentences), path, where, "ner")
    rels = _per_sentence(doc.get("relations") or [[] for _ in sentences], len(sentences), path, where, "relations")
    offset = 0
    for si, tokens in enumerate(sentences):
        bounds = (offset, offset + len(tokens))
        ents = []
        for j, item in enumerate(ners[si]):
            (s, e), typ = _dygie_span(item, 3, bounds, path, where, f"ner[{si}][{j}]")
            ents.append(Span(s, e, _str(typ, path, where, f"ner[{si}][{j}]")))
        relations = []
        for j, item in enumerate(rels[si]):
            field = f"relations[{si}][{j}]"
            (hs, he, ts, te), relation = _dygie_span(item, 5, bounds, path, where, field)
            args = []
            for s, e in ((hs, he), (ts, te)):
                entity = next((x for x in ents if (x.start, x.end) == (s, e)), None)
                if entity is None:
                    raise DataError(f"argument [{s + offset}, {e + offset - 1}] is not an entity of sentence {si}",
                                    path=path, line=where, field=field)
                args.append(entity)
            if hs < te and ts < he:
                raise DataError("head and tail overlap", path=path, line=where, field=field)
            relations.append(Relation(*args, _str(relation, path, where, field, optional=False)))
        yield Document(tokens, entities=ents, relations=relations, source=f"{path}:{where}",
                       meta={"doc_key": doc.get("doc_key"), "sentence": si})
        offset += len(tokens)


def _per_sentence(value: Any, n: int, path: Path, where: int | str, field: str) -> list[list]:
    ok = isinstance(value, list) and len(value) == n and all(isinstance(v, list) for v in value)
    _need(ok, f"a list of {n} lists (one per sentence)", value, path, where, field)
    return value


def _dygie_span(item: Any, width: int, bounds: tuple[int, int], path: Path, where: int | str,
                field: str) -> tuple[tuple[int, ...], Any]:
    """The sentence-relative token spans (end exclusive) of a DyGIE entity [start, end, type] or
    relation [h_start, h_end, t_start, t_end, label], whose offsets count document tokens, ends
    inclusive; and its last element."""
    _need(isinstance(item, list) and len(item) == width, f"a list of {width} values", item, path, where, field)
    *offsets, last = item
    offsets = [_int(x, path, where, field) for x in offsets]
    spans = []
    for s, e in zip(offsets[::2], offsets[1::2]):
        if not bounds[0] <= s <= e < bounds[1]:
            raise DataError(f"span [{s}, {e}] is outside its sentence (document tokens {bounds[0]} to "
                            f"{bounds[1] - 1})", path=path, line=where, field=field)
        spans += [s - bounds[0], e - bounds[0] + 1]
    return tuple(spans), last


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

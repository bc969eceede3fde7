"""Relation types given by description, for zero-shot relation extraction: a model that has never
seen a relation's examples recognises it from its name and description.

Formats are recognised by content, never by file name:

* knnie's own: a JSON list, or JSON lines, of ``{"id", "name", "description"}``; ``name`` may be
  left out (it is then the id). Other keys are refused: a misspelt ``"name"`` would otherwise
  silently leave the id as the name, and the name is half of what gets encoded.
* FewRel ``pid2name.json``: ``{"P17": ["country", "sovereign state of this item ..."], ...}``.
* RE-Matching ``*_relation_description.json``: ``{"P17": "country is sovereign state ..."}``.
* RE-Matching ``relation_description_processed.json`` (and ``..._addsynonym_processed.json``):
  ``[{"relation": "P17", "description": [tokens], "h": [...], "t": [...], ...}]``; the tokens are
  joined by spaces, the other keys (entity-type words) are left aside.

RE-Matching's strings read "<name> is <description>", so they are split at the first " is " into
name and description; a string without one is all description, named by its id.

Every problem is a `DataError` naming the file and the entry: the line of a JSON-lines file,
"record i" of a JSON list, "key 'P17'" of a JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knnie.data.files import numbered_lines, parse_json, read_text
from knnie.errors import DataError

KNOWN_FORMATS = (
    'knnie\'s JSON list or JSON lines of {"id"[, "name"], "description"}; '
    'FewRel pid2name.json {"P17": [name, description]}; '
    'RE-Matching {"P17": "name is description"} or [{"relation", "description": [tokens], ...}]'
)
_OWN_KEYS = ("id", "name", "description")


@dataclass(frozen=True)
class RelationType:
    """A relation given by id, name and description (zero-shot). `source` says where it was read
    ("file:entry"), for error messages; it does not make two relation types differ."""

    id: str
    name: str
    description: str
    source: str | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        """What gets encoded: the name alone is too short to tell many relations apart, and the
        description alone often leaves out the name's key word."""
        return f"{self.name}: {self.description}"


class _Object(dict):
    """A JSON object that keeps its (key, value) pairs in order, repeated keys included: a relation
    given twice in a JSON object must be refused, not silently replaced by its second entry."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def read_relation_types(path: str | Path) -> list[RelationType]:
    """The relation types of a file in any of the formats above, in file order; ids are unique."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError("file is empty", path=path)
    entries = _entries(text, path)
    if not entries:
        raise DataError("no relations in the file", path=path)
    seen: dict[str, int | str] = {}
    for where, relation in entries:
        if relation.id in seen:
            first = seen[relation.id]
            raise DataError(f"duplicate id '{relation.id}' (first at {'line ' if isinstance(first, int) else ''}"
                            f"{first})", path=path, line=where, field="id")
        seen[relation.id] = where
    return [relation for _, relation in entries]


def _entries(text: str, path: Path) -> list[tuple[int | str, RelationType]]:
    """(where, relation type) of every entry of a file, its format told by its content."""
    whole = _whole_json(text, path)
    if whole is None:  # JSON lines
        return _records([(n, parse_json(line, path, n)) for n, line in numbered_lines(text) if line.strip()], path)
    if isinstance(whole, dict) and "description" in whole:  # a single record, named by the line it starts on
        return _records([(text[: len(text) - len(text.lstrip())].count("\n") + 1, whole)], path)
    if isinstance(whole, list):
        return _records([(f"record {i}", record) for i, record in enumerate(whole)], path)
    if isinstance(whole, dict) and not whole:
        return []
    values = list(whole.values()) if isinstance(whole, dict) else []
    rematching = all(isinstance(v, str) for v in values)
    if values and (rematching or (_is_pid2name(values[0]) and all(isinstance(v, list) for v in values))):
        first_at: dict[str, int] = {}
        for i, (k, _) in enumerate(whole.pairs):
            if k in first_at:
                raise DataError(f"duplicate id '{k}' (entries {first_at[k]} and {i} of the object)", path=path,
                                line=f"key '{k}'", field="id")
            first_at[k] = i
        return [_keyed(f"key '{k}'", k, v, not rematching, path) for k, v in whole.pairs]
    raise DataError(f"not a relation description file: expected {KNOWN_FORMATS}", path=path)


def _whole_json(text: str, path: Path) -> Any:
    """The file as one JSON value; None for JSON lines (more than one value)."""
    try:
        return json.loads(text, object_pairs_hook=_Object)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            return None
        raise DataError(f"malformed JSON ({e.msg}, column {e.colno})", path=path, line=e.lineno) from e
    except (ValueError, RecursionError):
        return parse_json(text, path)  # raises its DataError


def _is_pid2name(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _records(records: list[tuple[int | str, Any]], path: Path) -> list[tuple[int | str, RelationType]]:
    """The records of a JSON list or a JSON-lines file: knnie's own or RE-Matching's processed ones."""
    first = records[0][1] if records else None
    rematching = isinstance(first, dict) and {"relation", "description"} <= first.keys()
    if records and not (rematching or (isinstance(first, dict) and first.keys() & set(_OWN_KEYS))):
        raise DataError(f"not a relation description file: expected {KNOWN_FORMATS}", path=path)
    return [_record(where, record, rematching, path) for where, record in records]


def _keyed(where: str, key: str, value: Any, pid2name: bool, path: Path) -> tuple[str, RelationType]:
    """An entry of a JSON object: pid2name's [name, description] or RE-Matching's one string."""
    relation_id = _string(key, path, where, "id")
    if pid2name:
        if not (isinstance(value, list) and len(value) == 2):
            raise DataError(f"needs [name, description] as in FewRel's pid2name.json, found {_shown(value)}",
                            path=path, line=where)
        name, description = (_string(v, path, where, f) for v, f in zip(value, ("name", "description")))
        return where, RelationType(relation_id, name, description, f"{path}:{where}")
    return where, _named(relation_id, _string(value, path, where, "description"), path, where)


def _record(where: int | str, record: Any, rematching: bool, path: Path) -> tuple[int | str, RelationType]:
    """A record of a JSON list or a JSON-lines file: knnie's own or RE-Matching's processed one."""
    if not isinstance(record, dict):
        raise DataError(f"needs a JSON object, found {_shown(record)}", path=path, line=where)
    if rematching:
        relation_id = _string(record.get("relation"), path, where, "relation")
        tokens = record.get("description")
        if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
            raise DataError(f"needs a list of words, found {_shown(tokens)}", path=path, line=where,
                            field="description")
        return where, _named(relation_id, _string(" ".join(tokens), path, where, "description"), path, where)
    unknown = sorted(set(record) - set(_OWN_KEYS))
    if unknown:
        raise DataError(f"unknown key(s) {', '.join(unknown)}: a relation has only {', '.join(_OWN_KEYS)}",
                        path=path, line=where)
    relation_id = _string(record.get("id"), path, where, "id")
    name = relation_id if record.get("name") is None else _string(record["name"], path, where, "name")
    description = _string(record.get("description"), path, where, "description")
    return where, RelationType(relation_id, name, description, f"{path}:{where}")


def _named(relation_id: str, sentence: str, path: Path, where: int | str) -> RelationType:
    """A relation from RE-Matching's "<name> is <description>" (named by its id when there is no " is ")."""
    name, is_, description = sentence.partition(" is ")
    if not is_:
        name, description = relation_id, sentence
    return RelationType(relation_id, name.strip() or relation_id, _string(description, path, where, "description"),
                        f"{path}:{where}")


def _string(value: Any, path: Path, where: int | str, field: str) -> str:
    """A field that must be a non-blank string."""
    if value is None:
        raise DataError("missing", path=path, line=where, field=field)
    if not isinstance(value, str):
        raise DataError(f"needs a string, found {_shown(value)}", path=path, line=where, field=field)
    if not value.strip():
        raise DataError("is empty", path=path, line=where, field=field)
    return value


def _shown(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."

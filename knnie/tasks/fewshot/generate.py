"""LLM-grown training signal for few-shot relation extraction (TKRE, Guo et al., IJCAI 2025).

* An explanation of each support example: why its sentence expresses its relation, and the trigger,
  the words of the sentence that indicate the relation (validated: copied from the sentence, outside
  head and tail; None when the LLM gave none such). `knnie fewshot pretrain` masks the trigger.
* Synthetic examples `{sentence, head, tail, relation}`, asked one at a time with demonstrations from
  the support set, the answer constrained to a JSON schema, then validated (`check_example`): an
  answer that does not parse, was cut short, names a head or tail that is not in the sentence as
  whole words, or is a duplicate or a copy of a support sentence is dropped with a counted reason.

Both outputs are JSON lines appended and flushed one by one as they are made, and a rerun resumes:
it keeps what the file holds (a last line cut short by a killed run is dropped) and asks only for
the rest, so nothing generated is lost when a run is interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from knnie.data import RelationExample, RelationType, example_from_text
from knnie.data.files import numbered_lines, parse_json, read_text
from knnie.errors import DataError
from knnie.io import atomic_path, locked
from knnie.llm import LLM, Completion, messages
from knnie.progress import counter, track

log = logging.getLogger(__name__)

# why an answer is dropped
NOT_JSON = "not JSON"
TRUNCATED = "truncated"
MISSING = "missing or empty field"
NOT_IN_SCHEMA = "relation not in the schema"
OTHER_RELATION = "relation other than asked"
HEAD_MISSING = "head not in the sentence"
TAIL_MISSING = "tail not in the sentence"
SAME = "head equals tail"
OVERLAP = "head and tail overlap"
SPLITS_CHARACTER = "entity cuts a character"
DUPLICATE = "duplicate"
SUPPORT_COPY = "copy of a support sentence"

EXPLANATION_SCHEMA = {"type": "object", "required": ["explanation", "trigger"],
                      "properties": {"explanation": {"type": "string"}, "trigger": {"type": "string"}}}


def example_schema(names: list[str]) -> dict[str, Any]:
    """The JSON schema of one synthetic example, its relation one of `names`."""
    fields = {"sentence": {"type": "string"}, "head": {"type": "string"}, "tail": {"type": "string"},
              "relation": {"type": "string", "enum": names}}
    return {"type": "object", "properties": fields, "required": list(fields)}


def find_words(sentence: str, phrase: str, avoid: Sequence[tuple[int, int]] = ()) -> tuple[int, int] | None:
    """The first place where `phrase` stands in `sentence` as whole words, overlapping none of `avoid`:
    as written if it is there, else ignoring case; None when it is not there."""
    phrase = phrase.strip()
    if not phrase:
        return None
    for flags in (0, re.IGNORECASE):
        for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", sentence, flags):
            if not any(m.start() < end and start < m.end() for start, end in avoid):
                return m.span()
    return None


def normalised(sentence: str) -> str:
    """A sentence's words, lower-cased: what makes two sentences the same for duplicates and copies."""
    return " ".join(re.findall(r"\w+", sentence.lower()))


def support_by_relation(support: list[RelationExample], relations: list[RelationType]
                        ) -> dict[str, list[RelationExample]]:
    """The support examples of each relation (id → examples); a label outside the schema is a DataError."""
    by_id: dict[str, list[RelationExample]] = {r.id: [] for r in relations}
    for ex in support:
        if ex.label not in by_id:
            raise DataError(f"label {ex.label!r} is not a relation of the schema ({len(by_id)} relations: "
                            f"{', '.join(list(by_id)[:8])}{' ...' if len(by_id) > 8 else ''})", path=ex.source)
        by_id[ex.label].append(ex)
    return by_id


def _answer(completion: Completion, required: tuple[str, ...]) -> dict[str, str] | str:
    """The answer's JSON object with non-empty strings in `required`, or why it is dropped."""
    if completion.truncated:
        return TRUNCATED
    try:
        answer = json.loads(completion.text)
    except (json.JSONDecodeError, RecursionError):
        return NOT_JSON
    if not isinstance(answer, dict):
        return NOT_JSON
    if not all(isinstance(answer.get(k), str) and answer[k].strip() for k in required):
        return MISSING
    return answer


@dataclass
class ExampleChecker:
    """Validates synthetic examples against the schema, the support set and those kept so far."""

    relations: list[RelationType]
    support: list[RelationExample]
    seen: set[str] = field(default_factory=set)  # normalised sentences kept

    def __post_init__(self) -> None:
        self.by_name = {r.id: r for r in self.relations} | {r.name: r for r in self.relations}
        self.copies = {normalised(ex.sentence) for ex in self.support}

    def check(self, completion: Completion, asked: RelationType) -> dict[str, Any] | str:
        """The example as a row of knnie's plain format (remembered as seen), or why it is dropped."""
        answer = _answer(completion, ("sentence", "head", "tail", "relation"))
        if isinstance(answer, str):
            return answer
        relation = self.by_name.get(answer["relation"].strip())
        if relation is None:
            return NOT_IN_SCHEMA
        if relation != asked:
            return OTHER_RELATION
        sentence, head, tail = (answer[k].strip() for k in ("sentence", "head", "tail"))
        if head.casefold() == tail.casefold():
            return SAME
        head_at = find_words(sentence, head)
        if head_at is None:
            return HEAD_MISSING
        tail_at = find_words(sentence, tail, [head_at])
        if tail_at is None:
            return TAIL_MISSING if find_words(sentence, tail) is None else OVERLAP
        try:
            example_from_text(sentence, (*head_at, None), (*tail_at, None), relation.id)
        except DataError:
            return SPLITS_CHARACTER
        key = normalised(sentence)
        if key in self.copies:
            return SUPPORT_COPY
        if key in self.seen:
            return DUPLICATE
        self.seen.add(key)
        return {"text": sentence, "head": {"start": head_at[0], "end": head_at[1]},
                "tail": {"start": tail_at[0], "end": tail_at[1]}, "label": relation.id, "generated": True}


def check_explanation(completion: Completion, example: RelationExample) -> dict[str, Any] | str:
    """The explanation row of a support example (its trigger validated: whole words of the sentence outside
    head and tail, else None), or why the answer is dropped."""
    answer = _answer(completion, ("explanation",))
    if isinstance(answer, str):
        return answer
    row = example.to_row()
    avoid = [(row[k]["start"], row[k]["end"]) for k in ("head", "tail")]
    trigger = answer.get("trigger")
    at = find_words(row["text"], trigger, avoid) if isinstance(trigger, str) else None
    return {**row, "label": example.label, "explanation": answer["explanation"].strip(),
            "trigger": None if at is None else {"text": row["text"][at[0]:at[1]], "start": at[0], "end": at[1]}}


def example_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a support example in the explanations file: text and head and tail offsets."""
    return row["text"], row["head"]["start"], row["head"]["end"], row["tail"]["start"], row["tail"]["end"]


@contextmanager
def resumed_jsonl(path: Path) -> Iterator[tuple[list[dict[str, Any]], TextIO]]:
    """The rows an output file already holds and the file open for appending, under its write lock. A last
    line cut short by a killed run is removed from the file (with a warning); any other malformed line is a
    DataError naming it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        rows: list[dict[str, Any]] = []
        if path.exists():
            text = read_text(path)
            lines = list(numbered_lines(text))
            if lines and lines[-1][1].strip():  # no newline at the end: maybe cut short
                n, last = lines.pop()
                try:
                    parse_json(last, path, n)
                    lines.append((n, last))
                except DataError:
                    log.warning("%s:%d: a line cut short by an interrupted run, dropped", path, n)
                with atomic_path(path, lock=False) as tmp:  # a crash now leaves the old file, not half of it
                    tmp.write_text("".join(f"{line}\n" for _, line in lines), encoding="utf-8")
            for n, line in lines:
                if line.strip():
                    row = parse_json(line, path, n)
                    if not isinstance(row, dict):
                        raise DataError("expected a JSON object", path=path, line=n)
                    rows.append(row)
        with open(path, "a", encoding="utf-8") as f:
            yield rows, f


def _append(f: TextIO, row: dict[str, Any]) -> None:
    """Write one row and push it to disk, so that a kill loses nothing written before it."""
    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _seed(*parts: Any) -> int:
    """A seed of its own for each request, the same on every run."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big") % 2**31


@dataclass
class ExplanationReport:
    asked: int = 0  # requests to the LLM
    written: int = 0
    existing: int = 0  # already in the file before this run
    with_trigger: int = 0
    failed: int = 0  # examples left unexplained after every try
    dropped: Counter = field(default_factory=Counter)  # answers dropped, by reason
    seconds: float = 0.0
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT): a rerun resumes


def explain_support(llm: LLM, relations: list[RelationType], support: list[RelationExample], out: Path,
                    seed: int = 0, tries: int = 3, temperature: float = 0.3, max_tokens: int = 120,
                    show_progress: bool = False) -> ExplanationReport:
    """Append to `out` an explanation of each support example whose label is one of `relations` and that
    the file does not already explain (`tries` requests at most each). Ctrl-C stops it with what was written
    kept (`interrupted` in the report)."""
    start, report = time.perf_counter(), ExplanationReport()
    by_id = {r.id: r for r in relations}
    with resumed_jsonl(out) as (rows, f):
        try:
            done = {example_key(row) for row in rows}
        except (KeyError, TypeError):
            raise DataError("not an explanations file: a row without text, head and tail", path=out) from None
        todo = [ex for ex in support if ex.label in by_id and example_key(ex.to_row()) not in done]
        report.existing = sum(ex.label in by_id for ex in support) - len(todo)
        try:
            for ex in track(todo, "explaining support examples", show=show_progress):
                _explain(llm, by_id[ex.label], ex, f, report, seed, tries, temperature, max_tokens)
        except KeyboardInterrupt:
            report.interrupted = True
    report.seconds = time.perf_counter() - start
    return report


def _explain(llm: LLM, relation: RelationType, ex: RelationExample, f: TextIO, report: ExplanationReport, seed: int,
             tries: int, temperature: float, max_tokens: int) -> None:
    """Ask for one support example's explanation until an answer is valid (`tries` at most); append it."""
    row = ex.to_row()
    prompt = messages("explain", name=relation.name, description=relation.description, sentence=row["text"],
                      head=row["head"]["text"], tail=row["tail"]["text"])
    for attempt in range(tries):
        result = check_explanation(llm.complete_json(prompt, EXPLANATION_SCHEMA, max_tokens, temperature,
                                                     _seed(seed, *example_key(row), attempt)), ex)
        report.asked += 1
        if isinstance(result, str):
            report.dropped[result] += 1
            continue
        _append(f, result)
        report.written += 1
        report.with_trigger += result["trigger"] is not None
        return
    report.failed += 1


@dataclass
class GenerationReport:
    asked: int = 0  # requests to the LLM
    kept: int = 0
    existing: int = 0  # already in the file before this run
    dropped: Counter = field(default_factory=Counter)  # answers dropped, by reason
    per_relation: dict[str, int] = field(default_factory=dict)  # examples of each relation in the file now
    seconds: float = 0.0
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT): a rerun resumes


def generate_examples(llm: LLM, relations: list[RelationType], support: list[RelationExample], per_relation: int,
                      out: Path, seed: int = 0, tries: int = 3, demonstrations: int = 3, temperature: float = 0.8,
                      max_tokens: int = 150, show_progress: bool = False) -> GenerationReport:
    """Append to `out` synthetic examples of each of `relations` until it holds `per_relation` of each, asking
    the LLM `tries` × as often as examples are missing at most. Relations are asked in turn, so an interrupted
    run leaves them balanced. `support` gives the demonstrations (of the asked relation, `demonstrations` at
    most per request) and the sentences a synthetic one must not copy. Ctrl-C stops it with what was written
    kept (`interrupted` in the report)."""
    start, report = time.perf_counter(), GenerationReport()
    demos = {r.id: [ex for ex in support if ex.label == r.id] for r in relations}
    schema = example_schema([r.name for r in relations])
    checker = ExampleChecker(relations, support)
    with resumed_jsonl(out) as (rows, f):
        have = Counter(row.get("label") for row in rows)
        checker.seen |= {normalised(row["text"]) for row in rows if isinstance(row.get("text"), str)}
        report.existing = sum(have[r.id] for r in relations)
        attempt = {r.id: 1 + max((row.get("attempt", -1) for row in rows if row.get("label") == r.id), default=-1)
                   for r in relations}
        missing = {r.id: max(0, per_relation - have[r.id]) for r in relations}
        budget = {r.id: tries * missing[r.id] for r in relations}
        with counter("generating examples", sum(missing.values()), show_progress) as update:
            try:
                while any(missing[r.id] and budget[r.id] for r in relations):
                    for r in relations:
                        if not (missing[r.id] and budget[r.id]):
                            continue
                        n, budget[r.id] = attempt[r.id], budget[r.id] - 1
                        attempt[r.id] += 1
                        result = checker.check(_ask_example(llm, r, demos[r.id], schema, _seed(seed, r.id, n),
                                                            demonstrations, temperature, max_tokens), r)
                        report.asked += 1
                        if isinstance(result, str):
                            report.dropped[result] += 1
                        else:
                            _append(f, {**result, "attempt": n})
                            report.kept += 1
                            missing[r.id] -= 1
                            have[r.id] += 1
                        update(0 if isinstance(result, str) else 1,
                               f"generating examples (asked {report.asked}, kept {report.kept})")
            except KeyboardInterrupt:
                report.interrupted = True
    report.per_relation = {r.id: have[r.id] for r in relations}
    report.seconds = time.perf_counter() - start
    return report


def _ask_example(llm: LLM, relation: RelationType, support: list[RelationExample], schema: dict[str, Any],
                 seed: int, demonstrations: int, temperature: float, max_tokens: int) -> Completion:
    """One synthetic example of `relation` asked of the LLM, shown a seeded draw of its support examples."""
    shown = random.Random(seed).sample(support, min(demonstrations, len(support)))
    lines = [json.dumps({"sentence": row["text"], "head": row["head"]["text"], "tail": row["tail"]["text"],
                         "relation": relation.name}, ensure_ascii=False) for row in (ex.to_row() for ex in shown)]
    prompt = messages("generate", name=relation.name, description=relation.description,
                      demonstrations="\n".join(lines) or "(none)")
    return llm.complete_json(prompt, schema, max_tokens, temperature, seed)

"""Distant supervision: KB triples matched against raw sentences become RE examples.

A sentence that mentions both entities of a triple (whole tokens, case-insensitive,
longest match first, aliases included) becomes an example of that relation (Mintz et al.
2009). The corpus is streamed file by file and sentence by sentence, so memory use does not
grow with its size; only 8-byte digests of emitted examples are kept for deduplication.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from knnie.data.files import NotUTF8Error, input_files, numbered_lines, parse_json, read_text
from knnie.data.tokenize import tokenize_with_offsets
from knnie.errors import DataError, KnnieError
from knnie.io import atomic_path

log = logging.getLogger(__name__)

# entity names that match everywhere and make DS noise
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "he", "her", "his", "i", "in",
    "is", "it", "its", "of", "on", "or", "she", "that", "the", "their", "they", "this", "to", "was", "were",
    "which", "who", "will", "with", "you",
})


@dataclass(frozen=True)
class Triple:
    head: str
    relation: str
    tail: str


@dataclass
class DSSummary:
    """What a build read, matched and skipped, and why."""

    files: int = 0
    sentences: int = 0
    examples: int = 0
    per_relation: Counter = field(default_factory=Counter)
    skipped_files: dict[str, str] = field(default_factory=dict)
    skipped_ambiguous: int = 0
    duplicates: int = 0
    suspicious_names: list[str] = field(default_factory=list)


def _norm(name: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in tokenize_with_offsets(name)[0])


def read_triples(path: str | Path) -> list[Triple]:
    """KB triples, one per line: head<TAB>relation<TAB>tail[<TAB>ids ignored]; '#' comments."""
    path = Path(path)
    triples = []
    for lineno, line in numbered_lines(read_text(path, "triples file")):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 3:
            raise DataError(f"expected head<TAB>relation<TAB>tail, found {len(cols)} column(s)", path=path,
                            line=lineno, field="tail" if len(cols) == 2 else "relation")
        head, rel, tail = (c.strip() for c in cols[:3])
        for name, value in (("head", head), ("relation", rel), ("tail", tail)):
            if not value:
                raise DataError("empty value", path=path, line=lineno, field=name)
        triples.append(Triple(head, rel, tail))
    if not triples:
        raise DataError("no triples in the file", path=path)
    return triples


def read_aliases(path: str | Path) -> dict[str, list[str]]:
    """Aliases, one entity per line: name<TAB>alias[<TAB>alias ...]."""
    path = Path(path)
    aliases: dict[str, list[str]] = defaultdict(list)
    for lineno, line in numbered_lines(read_text(path, "aliases file")):
        if not line.strip() or line.startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) < 2 or not all(cols):
            raise DataError("expected name<TAB>alias[<TAB>alias ...]", path=path, line=lineno, field="alias")
        aliases[cols[0]].extend(cols[1:])
    return dict(aliases)


class Matcher:
    """Finds KB entity mentions in tokenised sentences: longest whole-token match first."""

    def __init__(self, triples: list[Triple], aliases: dict[str, list[str]] | None = None,
                 drop_suspicious: bool = False) -> None:
        self.relations: dict[tuple[str, str], set[str]] = defaultdict(set)
        names = set()
        for t in triples:
            self.relations[(t.head, t.tail)].add(t.relation)
            names.update((t.head, t.tail))
        self.surface: dict[tuple[str, ...], set[str]] = defaultdict(set)  # token tuple -> entities
        self.suspicious: list[str] = []
        for name in sorted(names):
            for form in (name, *(aliases or {}).get(name, [])):
                key = _norm(form)
                if not key:
                    continue
                if len(key) == 1 and (key[0] in STOP_WORDS or len(key[0]) == 1):
                    self.suspicious.append(form)
                    if drop_suspicious:
                        continue
                self.surface[key].add(name)
        if self.suspicious:
            log.warning("%d entity names are stop words or single characters%s: %s", len(self.suspicious),
                        " (dropped)" if drop_suspicious else " (use --drop-suspicious to drop them)",
                        ", ".join(sorted(set(self.suspicious))[:10]))
        self.max_len = max((len(k) for k in self.surface), default=0)

    def mentions(self, tokens: list[str]) -> list[tuple[int, int, set[str]]]:
        """Non-overlapping mentions (start, end, entities), scanning left to right, longest first."""
        lower = [t.lower() for t in tokens]
        found, i = [], 0
        while i < len(lower):
            for n in range(min(self.max_len, len(lower) - i), 0, -1):
                ents = self.surface.get(tuple(lower[i : i + n]))
                if ents:
                    found.append((i, i + n, ents))
                    i += n
                    break
            else:
                i += 1
        return found


def read_corpus_file(path: Path, summary: DSSummary) -> str | None:
    """The text of a corpus file, counted in `summary`; None for a file that is not UTF-8 (reported
    in `summary.skipped_files` and skipped)."""
    try:
        text = read_text(path)
    except NotUTF8Error as e:
        summary.skipped_files[str(path)] = e.reason
        log.warning("%s: skipped, %s", path, e.reason)
        return None
    summary.files += 1
    return text


def documents_in(path: Path, text: str, one_per_line: bool = False, first_line: int = 1) -> Iterator[tuple[str, str]]:
    """(source, text) of the documents in `text`, the whole of `path` or the part of it that starts at
    line `first_line`: a .jsonl file gives one {text} per line; other files are one document each, or
    one per line with `one_per_line`."""
    if path.suffix == ".jsonl":
        for lineno, line in numbered_lines(text):
            if line.strip():
                lineno += first_line - 1
                rec = parse_json(line, path, lineno)
                if not (isinstance(rec, dict) and isinstance(rec.get("text"), str)):
                    raise DataError("expected a JSON object with 'text' (a string)", path=path, line=lineno,
                                    field="text")
                yield f"{path}:{lineno}", rec["text"]
    elif one_per_line:
        for lineno, line in numbered_lines(text):
            if line.strip():
                yield f"{path}:{lineno + first_line - 1}", line
    else:
        yield str(path), text


def iter_documents(corpus: str, summary: DSSummary, one_per_line: bool = False) -> Iterator[tuple[str, str]]:
    """(source, text) of every document of the corpus (`input_files`, `documents_in`), one file in
    memory at a time. Non-UTF-8 files are reported and skipped."""
    for path in input_files(corpus):
        text = read_corpus_file(path, summary)
        if text is not None:
            yield from documents_in(path, text, one_per_line)


@dataclass
class Matches:
    """What one document gives before deduplication (which needs every document before it): its
    sentences, the entity pairs skipped as ambiguous, and candidate examples with the digests
    that deduplicate them."""

    sentences: int = 0
    ambiguous: int = 0
    examples: list[tuple[bytes, dict]] = field(default_factory=list)


class DocumentMatcher:
    """The per-document half of a build: sentences split (pysbd), mentions matched, candidate examples
    made. It keeps nothing from one document to the next, so it gives the same in this process as in
    each Ray worker (`knnie.distant.parallel`), which builds its own from `args`."""

    def __init__(self, triples: list[Triple], aliases: dict[str, list[str]] | None = None,
                 ambiguous: str = "skip", drop_suspicious: bool = False) -> None:
        if ambiguous not in ("keep", "skip"):
            raise KnnieError(f"--ambiguous must be keep or skip, not '{ambiguous}'")
        import pysbd

        self.args = (triples, aliases, ambiguous, drop_suspicious)
        self.ambiguous = ambiguous
        self.segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
        self.matcher = Matcher(triples, aliases, drop_suspicious)
        self.suspicious_names = sorted(set(self.matcher.suspicious))

    def __call__(self, source: str, text: str) -> Matches:
        found = Matches()
        for paragraph in text.split("\n\n"):
            for sentence in self.segmenter.segment(" ".join(paragraph.split())):
                sentence = sentence.strip()
                if sentence:
                    found.sentences += 1
                    self._match(sentence, source, found)
        return found

    def _match(self, sentence: str, source: str, found: Matches) -> None:
        tokens, offsets = tokenize_with_offsets(sentence)
        mentions = self.matcher.mentions(tokens)
        relations = self.matcher.relations
        best: dict[tuple[str, str], tuple[int, tuple, tuple]] = {}  # entity pair -> closest mention pair
        for a in mentions:
            for b in mentions:
                if a is b:
                    continue
                for h in a[2]:
                    for t in b[2]:
                        if h != t and (h, t) in relations:
                            gap = abs(a[0] - b[0])
                            if (h, t) not in best or gap < best[(h, t)][0]:
                                best[(h, t)] = (gap, a, b)
        for (h, t), (_, a, b) in best.items():
            labels = sorted(relations[(h, t)])
            if len(labels) > 1 and self.ambiguous == "skip":
                found.ambiguous += 1
                continue
            for rel in labels:
                record = {
                    "text": sentence,
                    "head": {"start": offsets[a[0]][0], "end": offsets[a[1] - 1][1]},
                    "tail": {"start": offsets[b[0]][0], "end": offsets[b[1] - 1][1]},
                    "label": rel,
                }
                digest = hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=8).digest()
                found.examples.append((digest, {**record, "ds": {"head_entity": h, "tail_entity": t,
                                                                 "source": source}}))


def deduplicate(matches: Iterable[Matches], summary: DSSummary) -> Iterator[dict]:
    """The driver's half of a build: the documents' examples in corpus order, each once, counted
    in `summary`; only the 8-byte digests of the examples written are kept."""
    seen: set[bytes] = set()
    for found in matches:
        summary.sentences += found.sentences
        summary.skipped_ambiguous += found.ambiguous
        for digest, example in found.examples:
            if digest in seen:
                summary.duplicates += 1
                continue
            seen.add(digest)
            summary.examples += 1
            summary.per_relation[example["label"]] += 1
            yield example


def build_ds(triples: list[Triple], documents: Iterable[tuple[str, str]], summary: DSSummary,
             aliases: dict[str, list[str]] | None = None, ambiguous: str = "skip",
             drop_suspicious: bool = False) -> Iterator[dict]:
    """Yield DS examples (knnie's plain JSONL records) for every sentence mentioning both
    entities of a triple. `ambiguous`: an entity pair with several KB relations gives one
    example per relation ('keep') or none ('skip', the default: a memory wants precision)."""
    step = DocumentMatcher(triples, aliases, ambiguous, drop_suspicious)
    summary.suspicious_names = step.suspicious_names
    yield from deduplicate((step(source, text) for source, text in documents), summary)


def write_ds(path: str | Path, examples: Iterator[dict]) -> None:
    """Stream examples to `path` atomically (a failed build leaves no partial file)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")

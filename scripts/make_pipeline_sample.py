"""Write data/sample/pipeline/: a small English end-to-end sample written by hand for knnie.

Each document below is one to three sentences with entities marked ``[words|TYPE]`` and its
relations as (head, tail, label) over the document's entities, numbered from 0 in text order.
The script writes:

* ``ner.txt``: every sentence in CoNLL two-column format (``TOKEN TAG``, BIO), tokenised as knnie
  tokenises raw text;
* ``relations.jsonl``: plain relation records ``{"text", "head": {"start", "end", "type"}, "tail",
  "label"}`` (character offsets) for every ordered pair of entities in a sentence, ``no_relation``
  where none is given, and for every pair across two neighbouring sentences of a document (the
  text is then both sentences), so that a memory of it covers every pair the pipeline forms;
* ``documents.jsonl``: ``{"id", "text"}`` per document, the input of ``knnie extract``;
* ``expected.jsonl``: per document its entities ``[start, end, type, text]`` and relations
  ``[head start, head end, label, tail start, tail end, sentences apart]`` (character offsets).

Deterministic: no randomness; re-run after editing DOCUMENTS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from knnie.data.tokenize import tokenize_with_offsets

OUT = Path(__file__).resolve().parents[1] / "data" / "sample" / "pipeline"
MARK = re.compile(r"\[([^\]|]+)\|([A-Z]+)\]")
W, B, L = "works_for", "born_in", "located_in"

# (sentences, relations (head entity, tail entity, label)); entities numbered in the document's text order
DOCUMENTS: list[tuple[list[str], list[tuple[int, int, str]]]] = [
    (["[Marie Curie|PER] worked for the [Sorbonne|ORG] in [Paris|LOC]."], [(0, 1, W), (1, 2, L)]),
    (["[José Álvarez|PER] was born in [Sevilla|LOC]."], [(0, 1, B)]),
    (["[Jürgen Weiß|PER] works for [Siemens|ORG], which is based in [München|LOC]."], [(0, 1, W), (1, 2, L)]),
    (["The engineer [Anna Straße|PER] was born in [Köln|LOC].", "Today she works for [Bayer|ORG]."],
     [(0, 1, B), (0, 2, W)]),
    (["🎉 [Chloé Dubois|PER] joined [Renault|ORG] last spring."], [(0, 1, W)]),
    (["[Tanaka Yuki|PER] was born in 東京 and later moved to [Osaka|LOC]."], []),
    (["After the 東京 meeting, [Sato Kenji|PER] started working for [Hitachi|ORG]."], [(0, 1, W)]),
    (["[Björn Öberg|PER] was born in [Göteborg|LOC].", "He works for [Volvo|ORG] in [Göteborg|LOC]."],
     [(0, 1, B), (0, 2, W), (2, 3, L)]),
    (["[Nadia Haddad|PER] works for the [Red Cross|ORG] in [Beirut|LOC]."], [(0, 1, W)]),
    (["The [Louvre|ORG] is located in [Paris|LOC]."], [(0, 1, L)]),
    (["[Zoë Müller|PER] was born in [Zürich|LOC] and works for [Nestlé|ORG]."], [(0, 1, B), (0, 2, W)]),
    (["[Nestlé|ORG] is based in [Vevey|LOC].", "Its chief executive [Marc Favre|PER] was born in [Genève|LOC]."],
     [(0, 1, L), (2, 3, B), (2, 0, W)]),
    (["[Ahmed Benali|PER] met [Lucía Fernández|PER] in [Madrid|LOC]."], []),
    (["[Ingrid Sørensen|PER] works for [Maersk|ORG] in [København|LOC]."], [(0, 1, W), (1, 2, L)]),
    (["[Fatoumata Diallo|PER] was born in [Dakar|LOC].", "She moved to [Lyon|LOC] in 2010."], [(0, 1, B)]),
    (["The [Acme Corp|ORG] factory in [Łódź|LOC] closed on Friday."], [(0, 1, L)]),
    (["[Peter Olsen|PER] is a spokesman for [Nordbank|ORG]."], [(0, 1, W)]),
    (["[Nordbank|ORG] has its head office in [Oslo|LOC].", "[Kari Nordmann|PER] was born in [Bergen|LOC].",
      "She has worked for [Nordbank|ORG] since 2001."], [(0, 1, L), (2, 3, B), (2, 4, W)]),
    (["★ [Olga Petrova|PER] was born in [Kazan|LOC] and works for [Gazprom|ORG]."], [(0, 1, B), (0, 2, W)]),
    (["[Helios Labs|ORG] opened an office in [Dublin|LOC]."], [(0, 1, L)]),
    (["[Grace Obi|PER] works for [Helios Labs|ORG]."], [(0, 1, W)]),
    (["[Carlos Ruiz|PER], born in [Lima|LOC], now lives in [Madrid|LOC]."], [(0, 1, B)]),
    (["[François Lefèvre|PER] was born in [Besançon|LOC].", "He works for [Airbus|ORG] in [Toulouse|LOC]."],
     [(0, 1, B), (0, 2, W), (2, 3, L)]),
    (["The [Polar Research Institute|ORG] is located in [Tromsø|LOC]."], [(0, 1, L)]),
]


def parse(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The plain sentence and its entities (start, end, type) in characters."""
    text, entities, at = "", [], 0
    for m in MARK.finditer(marked):
        text += marked[at : m.start()]
        entities.append((len(text), len(text) + len(m.group(1)), m.group(2)))
        text += m.group(1)
        at = m.end()
    return text + marked[at:], entities


def conll(text: str, entities: list[tuple[int, int, str]]) -> list[str]:
    """`TOKEN TAG` lines of one sentence."""
    tokens, offsets = tokenize_with_offsets(text)
    tags = ["O"] * len(tokens)
    for start, end, typ in entities:
        inside = [i for i, (a, b) in enumerate(offsets) if a >= start and b <= end]
        assert inside and offsets[inside[0]][0] == start and offsets[inside[-1]][1] == end, (text, start, end)
        tags[inside[0]] = f"B-{typ}"
        for i in inside[1:]:
            tags[i] = f"I-{typ}"
    return [f"{t} {g}" for t, g in zip(tokens, tags)]


def main() -> None:
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)  # as the pipeline splits text
    OUT.mkdir(parents=True, exist_ok=True)
    ner, rel, docs, expected = [], [], [], []
    for n, (marked, relations) in enumerate(DOCUMENTS, 1):
        sentences = [parse(s) for s in marked]
        text = " ".join(s for s, _ in sentences)
        assert [s.strip() for s in segmenter.segment(text)] == [s for s, _ in sentences], text
        entities, where = [], []  # (start, end, type) in the document; the sentence of each
        shift = 0
        for si, (sentence, spans) in enumerate(sentences):
            ner += [*conll(sentence, spans), ""]
            entities += [(a + shift, b + shift, t) for a, b, t in spans]
            where += [si] * len(spans)
            shift += len(sentence) + 1
        gold = {(h, t): label for h, t, label in relations}
        assert all(where[t] - where[h] in (-1, 0, 1) for h, t in gold), marked
        for h, head in enumerate(entities):
            for t, tail in enumerate(entities):
                if h == t or abs(where[h] - where[t]) > 1:
                    continue
                first = min(where[h], where[t])
                begin = sum(len(s) + 1 for s, _ in sentences[:first])
                context = " ".join(s for s, _ in sentences[first : max(where[h], where[t]) + 1])
                rel.append({"text": context,
                            "head": {"start": head[0] - begin, "end": head[1] - begin, "type": head[2]},
                            "tail": {"start": tail[0] - begin, "end": tail[1] - begin, "type": tail[2]},
                            "label": gold.get((h, t), "no_relation")})
        docs.append({"id": f"doc{n}", "text": text})
        expected.append({"id": f"doc{n}", "text": text,
                         "entities": [[a, b, typ, text[a:b]] for a, b, typ in entities],
                         "relations": [[*entities[h][:2], label, *entities[t][:2], abs(where[h] - where[t])]
                                       for h, t, label in relations]})
    (OUT / "ner.txt").write_text("\n".join(ner), encoding="utf-8")
    for name, rows in (("relations", rel), ("documents", docs), ("expected", expected)):
        (OUT / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                           encoding="utf-8")
    print(f"{len(DOCUMENTS)} documents, {ner.count('')} sentences, {len(rel)} relation records -> {OUT}")


if __name__ == "__main__":
    main()

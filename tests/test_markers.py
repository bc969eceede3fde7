"""Entity markers, and windowing of sentences longer than the encoder's limit."""

from __future__ import annotations

import pytest

from knnie import DataError, RelationExample, RelationExtractor, Span
from knnie.encoders.markers import encode, marker_tokens, with_markers

MAX_LENGTH = 32


@pytest.fixture(scope="module")
def short() -> RelationExtractor:
    """An (untrained) extractor that knows the PER type and reads at most 32 sub-words."""
    return RelationExtractor.new(["founded", "other"], entity_types=["PER"], max_length=MAX_LENGTH)


def long_example(head: int, tail: int, n: int = 100) -> RelationExample:
    """n words of filler with a one-word PER head and an untyped one-word tail."""
    tokens = ["filler"] * n
    tokens[head], tokens[tail] = "Alice", "Bob"
    return RelationExample(tokens, Span(head, head + 1, "PER"), Span(tail, tail + 1, "ORG"), source="long.jsonl:7")


def token_id(extractor: RelationExtractor, token: str) -> int:
    return extractor.tokenizer.convert_tokens_to_ids(token)


def test_markers_surround_entities_typed_only_when_known():
    ex = RelationExample(["Alice", "founded", "Acme", "Inc"], Span(0, 1, "PER"), Span(2, 4, "ORG"))
    words, h, t = with_markers(ex, {"PER"})
    assert words == ["[H:PER]", "Alice", "[/H:PER]", "founded", "[T]", "Acme", "Inc", "[/T]"]
    assert (words[h], words[t]) == ("[H:PER]", "[T]")
    assert set(marker_tokens(["PER"])) == {"[H]", "[/H]", "[T]", "[/T]", "[H:PER]", "[/H:PER]", "[T:PER]", "[/T:PER]"}


@pytest.mark.parametrize(("head", "tail"), [(48, 51), (52, 47)], ids=["head-first", "tail-first"])
def test_long_sentence_is_windowed_around_both_entities(short, head, tail):
    ex = long_example(head, tail)
    full = short.tokenizer(with_markers(ex, {"PER"})[0], is_split_into_words=True)["input_ids"]
    assert len(full) > MAX_LENGTH  # the example really needs windowing

    batch = encode(short.tokenizer, [ex], {"PER"}, MAX_LENGTH)
    ids = batch.input_ids[0]
    assert len(ids) <= MAX_LENGTH
    assert ids[batch.head_pos[0]] == token_id(short, "[H:PER]")
    assert ids[batch.tail_pos[0]] == token_id(short, "[T]")
    for end_marker in ("[/H:PER]", "[/T]"):
        assert token_id(short, end_marker) in ids
    # the window keeps the entities' words, not only their markers
    text = short.tokenizer.decode(ids)
    assert "alice" in text and "bob" in text


def test_short_sentence_is_not_windowed(short):
    ex = RelationExample(["Alice", "visited", "Paris"], Span(0, 1, "PER"), Span(2, 3))
    batch = encode(short.tokenizer, [ex], {"PER"}, MAX_LENGTH)
    assert short.tokenizer.convert_ids_to_tokens(batch.input_ids[0]) == [
        "[CLS]", "[H:PER]", "alice", "[/H:PER]", "visited", "[T]", "paris", "[/T]", "[SEP]"]
    assert (batch.head_pos[0], batch.tail_pos[0]) == (1, 5)


def test_entities_further_apart_than_the_limit_are_refused(short):
    with pytest.raises(DataError, match="more than the encoder's limit of 32") as err:
        encode(short.tokenizer, [long_example(5, 90)], {"PER"}, MAX_LENGTH)
    assert "long.jsonl:7" in str(err.value) and err.value.field == "tokens"

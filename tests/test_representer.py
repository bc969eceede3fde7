"""Representers: the same vectors as before they existed, the same vectors as the front class's
`encode`, the entity-mask marker scheme, and text pooling. No training: untrained models whose
new weights are set from numpy seeds, so their outputs are fixed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from knnie import DataError, KnnieError, RelationExample, RelationExtractor, Span, read_relations
from knnie.data.tagged import read_tagged
from knnie.encoders.markers import EntityMask, TypedMarkers
from knnie.encoders.representer import TextRepresenter
from knnie.tasks.ner import EntityRecognizer, tag_set

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "data" / "sample"
# encode outputs of `re_case` and `ner_cases`, projected by `projected`, written by the code before
# representers (i12-core 26b121e); see test_encode_gives_what_the_code_before_representers_gave
REFERENCE = Path(__file__).parent / "data" / "encode_reference.npz"
FINGERPRINTS = {"re": "465a86bab7835a72", "hf": "2edef7c26a88969c", "char": "11fc6e8eb555c14c"}  # of the same code


def fill(params, seed: int) -> None:
    """Set parameters from a numpy seed: fixed weights without torch's RNG."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.from_numpy(rng.normal(0.0, 0.05, tuple(p.shape)).astype(np.float32)))


def re_case() -> tuple[RelationExtractor, list[RelationExample]]:
    """Typed markers, a fixed head, four sample examples, a typed one and one cut to a window."""
    examples = [
        *read_relations(SAMPLE / "fewrel8" / "test.jsonl")[:4],
        RelationExample(["Alice", "founded", "Acme", "Inc", "in", "Paris"], Span(0, 1, "PER"), Span(2, 4, "ORG")),
        RelationExample(["filler"] * 60 + ["Bob"] + ["x"] * 3 + ["Carol"], Span(60, 61, "PER"), Span(64, 65, "LOC"))]
    extractor = RelationExtractor.new(["a", "b", "c"], entity_types=["ORG", "PER"], max_length=48, device="cpu")
    emb = extractor.model.encoder.get_input_embeddings().weight
    n_markers = len(extractor.tokenizer) - extractor.tokenizer.vocab_size
    fill([emb[-n_markers:]], 0)
    fill(extractor.model.classifier.parameters(), 1)
    return extractor, examples


def ner_cases() -> tuple[EntityRecognizer, EntityRecognizer, list]:
    """The default encoder with 8 sub-tokens a window (every sentence is split), and a char-BiLSTM."""
    sentences = read_tagged(SAMPLE / "ner" / "train.txt")[:3]
    hf = EntityRecognizer.new(tag_set(sentences), max_length=8, device="cpu")
    fill(hf.model.classifier.parameters(), 2)
    char = EntityRecognizer.new(tag_set(sentences), "char-bilstm", sentences, device="cpu")
    fill([p for _, p in sorted(char.model.encoder.named_parameters())], 3)
    fill(char.model.classifier.parameters(), 4)
    return hf, char, sentences


def projected(vectors: np.ndarray, seed: int = 5) -> np.ndarray:
    """16 random projections of each vector: small to store, and any changed vector changes them."""
    return vectors.astype(np.float64) @ np.random.default_rng(seed).normal(size=(vectors.shape[1], 16))


@pytest.fixture(scope="module")
def cases() -> dict:
    extractor, examples = re_case()
    hf, char, sentences = ner_cases()
    return {"re": (extractor, examples), "hf": (hf, sentences), "char": (char, sentences)}


def test_encode_gives_what_the_code_before_representers_gave(cases):
    """Vectors, probabilities and fingerprints of fixed models equal those of the code before the
    refactor (bit for bit on the machine that wrote the reference; tolerances allow other BLAS)."""
    reference = np.load(REFERENCE)
    for name, (front, items) in cases.items():
        vectors, probs = front.encode(items, batch_size=3)
        np.testing.assert_allclose(projected(vectors), reference[f"{name}_vectors"], rtol=1e-4, atol=1e-4,
                                   err_msg=name)
        np.testing.assert_allclose(probs, reference[f"{name}_probs"], atol=1e-6, err_msg=name)
        assert front.fingerprint == FINGERPRINTS[name]  # memories built before stay valid


def test_the_representer_alone_gives_the_models_vectors(cases):
    for name, (front, items) in cases.items():
        vectors, probs = front.encode(items, batch_size=2)
        alone = front.representer.encode(items, batch_size=2)  # the same batches: the same padding
        np.testing.assert_array_equal(alone, vectors, err_msg=name)
        assert alone.dtype == np.float32 and alone.shape == (len(vectors), front.representer.dim)
        assert probs.shape == (len(vectors), len(front.labels))


def test_batch_size_is_checked_by_the_representer(cases):
    extractor, examples = cases["re"]
    with pytest.raises(KnnieError, match="batch_size must be an integer ≥ 1, not 0"):
        extractor.representer.encode(examples, batch_size=0)


# -- the entity-mask scheme ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def masked() -> RelationExtractor:
    return RelationExtractor.new(["a", "b"], entity_types=["PER"], markers="entity-mask", max_length=64,
                                 device="cpu")


def test_entity_mask_puts_one_mask_token_where_each_entity_was(masked):
    ex = RelationExample(["Ada", "Lovelace", "visited", "New", "York"], Span(0, 2, "PER"), Span(3, 5, "LOC"))
    batch, n = masked.representer.prepare([ex])
    tokens = masked.tokenizer.convert_ids_to_tokens(batch.input_ids[0])
    assert tokens == ["[CLS]", "[H:PER]", "visited", "[T]", "[SEP]"]  # LOC is no type of the model: [T]
    assert (tokens[batch.head_pos[0]], tokens[batch.tail_pos[0]]) == ("[H:PER]", "[T]")
    assert n == 1 and masked.config.markers == "entity-mask"
    added = masked.tokenizer.convert_tokens_to_ids(["[H]", "[T]", "[H:PER]", "[T:PER]"])  # and nothing else
    assert sorted(added) == list(range(masked.tokenizer.vocab_size, len(masked.tokenizer)))


def test_entity_mask_windows_long_sentences_around_both_masks(masked):
    tokens = ["filler"] * 100
    tokens[52], tokens[47] = "Alice", "Bob"  # "filler" is two sub-words: 100 words need windowing
    ex = RelationExample(tokens, Span(52, 53, "PER"), Span(47, 48))
    batch, _ = masked.representer.prepare([ex])
    ids = batch.input_ids[0]
    assert len(ids) == 64
    assert masked.tokenizer.convert_ids_to_tokens([ids[batch.head_pos[0]], ids[batch.tail_pos[0]]]) == ["[H:PER]",
                                                                                                      "[T]"]


def test_entity_mask_vectors_are_finite_and_differ_from_typed_markers(masked, sample):
    typed = RelationExtractor.new(["a", "b"], entity_types=["PER"], max_length=64, device="cpu")
    examples = [ex for i, ex in enumerate(sample.test[:12]) if i not in typed.too_long(sample.test[:12])][:6]
    vectors, probs = masked.encode(examples)
    assert vectors.shape == (6, 768) and np.isfinite(vectors).all() and np.isfinite(probs).all()
    assert not np.allclose(typed.representer.encode(examples), vectors)
    # the scheme is part of the representation: memories of one are refused by the other
    assert EntityMask.representation != TypedMarkers.representation
    assert masked.fingerprint != typed.fingerprint


def test_entity_mask_is_saved_and_loaded_with_the_model(masked, sample, tmp_path):
    masked.save_pretrained(tmp_path / "m")
    loaded = RelationExtractor.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.config.markers == "entity-mask" and isinstance(loaded.representer.markers, EntityMask)
    examples = sample.test[:4]
    np.testing.assert_array_equal(loaded.representer.encode(examples), masked.representer.encode(examples))


def test_unknown_marker_scheme_is_refused_when_made_and_when_read(masked, tmp_path):
    with pytest.raises(KnnieError, match="unknown entity-marker scheme 'brackets'; choose one of typed, entity-mask"):
        RelationExtractor.new(["a", "b"], markers="brackets", device="cpu")
    masked.save_pretrained(tmp_path / "m")
    config = tmp_path / "m" / "knnie_config.json"
    raw = json.loads(config.read_text())
    config.write_text(json.dumps({**raw, "markers": "brackets"}))
    with pytest.raises(DataError, match="field 'markers': unknown entity-marker scheme 'brackets'"):
        RelationExtractor.from_pretrained(tmp_path / "m", device="cpu")


def test_entity_mask_refuses_overlapping_entities_naming_the_example(masked):
    ex = RelationExample(["New", "York", "City"], Span(0, 3), Span(0, 2), source="x.jsonl:3")
    with pytest.raises(DataError, match=r"x\.jsonl:3 field 'tail': head and tail overlap"):
        masked.representer.encode([ex])


# -- text pooling ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_mean() -> TextRepresenter:
    return TextRepresenter.fresh(pooling="mean")


TEXTS = ["founded by", "the person or organization that founded the organization named as head entity", "x"]


def test_mean_pooling_is_the_mean_of_the_token_states_and_padding_does_not_change_it(text_mean):
    together = text_mean.encode(TEXTS, batch_size=3)
    alone = np.concatenate([text_mean.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    enc = text_mean.tokenizer(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        states = text_mean.encoder(**enc).last_hidden_state[0]
    np.testing.assert_allclose(together[0], states.mean(0).numpy(), atol=1e-6)


def test_weighted_pooling_starts_as_the_mean_and_is_saved_with_its_weights(text_mean, tmp_path):
    weighted = TextRepresenter(text_mean.encoder, text_mean.tokenizer, pooling="weighted")
    np.testing.assert_allclose(weighted.encode(TEXTS), text_mean.encode(TEXTS), atol=1e-5)
    fill(weighted.scorer.parameters(), 7)  # as if trained
    trained = weighted.encode(TEXTS)
    assert not np.allclose(trained, text_mean.encode(TEXTS), atol=1e-3)
    assert weighted.fingerprint() != text_mean.fingerprint()
    weighted.save(tmp_path / "text")
    loaded = TextRepresenter.load(tmp_path / "text")
    assert loaded.pooling == "weighted" and loaded.fingerprint() == weighted.fingerprint()
    np.testing.assert_array_equal(loaded.encode(TEXTS), trained)


def test_text_representer_refuses_unknown_pooling_and_empty_texts(text_mean, caplog):
    with pytest.raises(KnnieError, match="unknown pooling 'max'; choose one of mean, weighted"):
        TextRepresenter(text_mean.encoder, text_mean.tokenizer, pooling="max")
    with pytest.raises(DataError, match="text 1: needs a non-empty text, found ' '"):
        text_mean.encode(["ok", " "])
    short = TextRepresenter(text_mean.encoder, text_mean.tokenizer, max_length=8)
    assert short.encode(TEXTS).shape == (3, 384)
    assert "1 of 3 texts exceed the encoder's 8 sub-tokens and were truncated: text 1" in caplog.text

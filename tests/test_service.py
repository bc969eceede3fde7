"""The HTTP service through FastAPI's TestClient: every endpoint, validation errors, the API key,
batching of concurrent requests, concurrent writers, a truncated memory. Small headless models
(no training): the pretrained encoder and memories of the shipped samples."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import knnie
from knnie import DataError, example_from_text
from knnie.cli import serve
from knnie.cli.main import app as cli
from knnie.service import create_app, parse_model_args
from knnie.service.schemas import MAX_NEIGHBOURS, MAX_TEXT_CHARS, MAX_TEXTS

TEXT = "Anna Keller works for Siemens in Berlin . Hamburg lies on the River Elbe ."
HAMBURG = {"text": "Hamburg lies on the River Elbe, about 110 km from the North Sea.",
           "head": {"start": 0, "end": 7}, "tail": {"start": 20, "end": 30}}


@pytest.fixture(scope="module")
def client(served_dirs) -> TestClient:
    return TestClient(create_app(served_dirs, device="cpu"))


def copied(served_dirs: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """Copies of the model directories, for a test that writes to them."""
    return {name: Path(shutil.copytree(path, tmp_path / name)) for name, path in served_dirs.items()}


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]


# -- the endpoints -------------------------------------------------------------------------
def test_health_lists_the_models_and_their_memories(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["write_needs_key"] is False
    assert {n: m["task"] for n, m in health["models"].items()} == {"ner": "ner", "re": "relation-extraction"}
    assert health["models"]["re"]["memories"]["train"] == {"size": 40, "sources": ["train"]}
    assert health["models"]["ner"]["labels"] == ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]


def test_entities_are_what_the_recognizer_finds(client, served_dirs):
    response = client.post("/entities", json={"texts": [TEXT, "Zoë Müller visited Zürich ."], "neighbours": 2})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = knnie.load(served_dirs["ner"], device="cpu").predict([TEXT, "Zoë Müller visited Zürich ."], 2)
    assert results == [json.loads(json.dumps(p.to_dict())) for p in expected]
    assert ("Anna Keller", "PER") in {(e["text"], e["type"]) for e in results[0]["entities"]}
    for result in results:
        for e in result["entities"]:
            assert result["text"][e["char_start"] : e["char_end"]] == e["text"] and len(e["neighbours"]) == 2


def test_relations_from_character_or_token_spans_are_the_extractors_predictions(client, served_dirs):
    tokens = {"tokens": ["Hamburg", "lies", "on", "the", "River", "Elbe", "."],
              "head": {"start": 0, "end": 1}, "tail": {"start": 4, "end": 6, "type": "LOC"}}
    response = client.post("/relations", json={"items": [HAMBURG, tokens], "neighbours": 3})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    extractor = knnie.load(served_dirs["re"], device="cpu")
    example = example_from_text(HAMBURG["text"], (0, 7, None), (20, 30, None))
    [expected] = extractor.predict([example], neighbours=3)
    assert results[0]["prediction"] == expected.label
    assert results[0]["probability"] == pytest.approx(expected.probability)
    assert [n["distance"] for n in results[0]["neighbours"]] == pytest.approx([n.distance for n in expected.neighbours])
    assert results[0]["head"] == {"text": "Hamburg", "start": 0, "end": 7, "type": None}
    assert results[1]["tail"]["text"] == "River Elbe" and results[1]["tail"]["type"] == "LOC"
    assert {"p_model", "p_knn"} <= set(results[0]) and len(results[1]["neighbours"]) == 3


def test_extract_gives_entities_and_relations_with_offsets_and_the_probability_split(client):
    response = client.post("/extract", json={"texts": [TEXT], "neighbours": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ner"] == "ner" and body["re"] == "re"
    [result] = body["results"]
    assert result["text"] == TEXT and result["entities"]
    ids = {e["id"] for e in result["entities"]}
    for e in result["entities"]:
        assert TEXT[e["start"] : e["end"]] == e["text"]
    assert result["relations"]
    for r in result["relations"]:
        assert r["head"] in ids and r["tail"] in ids and r["label"] != "no_relation" and len(r["neighbours"]) == 2
        assert r["p_model"] is None and r["p_knn"] == pytest.approx(r["probability"])  # headless: memory only


def test_the_page_static_files_and_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="text"' in page.text and "/static/app.js" in page.text
    assert "showRelation" in client.get("/static/app.js").text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/extract", "/relations", "/entities", "/memory/add", "/memory/remove", "/health"} <= set(paths)


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "field"), [
    ({"texts": ["x"] * (MAX_TEXTS + 1)}, "body.texts"),
    ({"texts": ["a" * (MAX_TEXT_CHARS + 1)]}, "body.texts.0"),
    ({"texts": ["ok", "   "]}, "body.texts"),
    ({"texts": []}, "body.texts"),
    ({"texts": ["ok"], "neighbours": MAX_NEIGHBOURS + 1}, "body.neighbours"),
    ({"texts": ["ok"], "neighbors": 3}, "body.neighbors"),
    ({"texts": "not a list"}, "body.texts"),
])
def test_invalid_entity_requests_are_422_naming_the_field(client, body, field):
    message = error(client.post("/entities", json=body), 422)
    assert message.startswith(field)


@pytest.mark.parametrize(("item", "field"), [
    ({**HAMBURG, "head": {"start": 0, "end": 700}}, "body.items.0.head"),
    ({**HAMBURG, "head": {"start": 5, "end": 5}}, "body.items.0.head"),
    ({**HAMBURG, "head": {"start": -1, "end": 5}}, "body.items.0.head.start"),
    ({**HAMBURG, "tail": {"start": 3, "end": 9}}, "body.items.0.tail"),  # overlaps the head
    ({"text": "Zoe\u0308 lives here .", "head": {"start": 0, "end": 3}, "tail": {"start": 5, "end": 10}},
     "body.items.0.head"),  # ends between the e and its combining diaeresis
    ({"tokens": ["a", "b"], "head": {"start": 0, "end": 1}, "tail": {"start": 1, "end": 3}}, "body.items.0"),
    ({**HAMBURG, "tokens": ["a", "b"]}, "body.items.0"),
    ({"head": {"start": 0, "end": 1}, "tail": {"start": 1, "end": 2}}, "body.items.0"),
    ({**HAMBURG, "head": {"start": "zero", "end": 7}}, "body.items.0.head.start"),
])
def test_invalid_spans_are_422_naming_the_item_and_field(client, item, field):
    message = error(client.post("/relations", json={"items": [item]}), 422)
    assert message.startswith(field), message


def test_unknown_or_wrong_models_are_404_and_400_listing_the_models(client):
    message = error(client.post("/entities", json={"texts": ["x"], "model": "nope"}), 404)
    assert "'nope'" in message and "ner (NER), re (relation)" in message
    assert "relation model" in error(client.post("/entities", json={"texts": ["x"], "model": "re"}), 400)
    assert "'re'" in error(client.post("/extract", json={"texts": ["x"], "ner": "ner", "re": "ner"}), 400)
    assert "ner (NER)" in error(client.post("/memory/remove", json={"model": "gone", "source": "x"}), 404)
    assert error(client.get("/nowhere"), 404)


def test_malformed_json_and_oversized_bodies_are_refused(client):
    message = error(client.post("/entities", content=b'{"texts": ["a"', headers={"Content-Type": "application/json"}),
                    422)
    assert message.startswith("malformed JSON at character 14 of the body")
    big = json.dumps({"texts": ["a" * 1000] * 5000}).encode()  # 5 MB > 4 MiB
    assert "body over" in error(client.post("/entities", content=big, headers={"Content-Type": "application/json"}),
                                413)
    chunks = iter([big[i : i + 65536] for i in range(0, len(big), 65536)])  # no Content-Length: counted as it comes
    assert "body over" in error(client.post("/entities", content=chunks,
                                            headers={"Content-Type": "application/json"}), 413)
    assert client.get("/health").status_code == 200  # still serving


# -- writes --------------------------------------------------------------------------------
def test_add_is_used_by_the_next_prediction_and_remove_restores_it(served_dirs, tmp_path):
    dirs = copied(served_dirs, tmp_path)
    client = TestClient(create_app(dirs, device="cpu"))
    before = client.post("/relations", json={"items": [HAMBURG], "neighbours": 3}).json()["results"][0]
    added = client.post("/memory/add", json={"model": "re", "source": "mine", "relations": [
        {**HAMBURG, "label": "flows past"}, {**HAMBURG, "head": {"start": 54, "end": 63}, "label": "flows past"}]})
    assert added.status_code == 200, added.text
    assert added.json() == {"model": "re", "memory": "live", "source": "mine", "added": 2, "size": 2}
    after = client.post("/relations", json={"items": [HAMBURG], "neighbours": 3}).json()["results"][0]
    assert after["prediction"] == "flows past" and after["neighbours"][0]["memory"] == "live"
    assert after["neighbours"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    reloaded = knnie.load(dirs["re"], device="cpu")  # durable: saved in the model directory
    assert len(reloaded.memories["live"]) == 2 and "flows past" in reloaded.label_space
    removed = client.post("/memory/remove", json={"model": "re", "source": "mine"})
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"model": "re", "source": "mine", "removed": 2, "memories": {"train": 40}}
    restored = client.post("/relations", json={"items": [HAMBURG], "neighbours": 3}).json()["results"][0]
    assert restored == before
    assert "live" not in knnie.load(dirs["re"], device="cpu").memories
    assert "'mine'" in error(client.post("/memory/remove", json={"model": "re", "source": "mine"}), 404)


def test_sentences_are_added_to_a_ner_memory(served_dirs, tmp_path):
    dirs = copied(served_dirs, tmp_path)
    client = TestClient(create_app(dirs, device="cpu"))
    sentence = {"tokens": ["Gizmo", "X", "ships", "today", "."], "tags": ["B-GADGET", "I-GADGET", "O", "O", "O"]}
    before = client.post("/entities", json={"texts": ["Gizmo X ships today ."]}).json()["results"]
    response = client.post("/memory/add", json={"model": "ner", "memory": "gadgets", "sentences": [sentence] * 3})
    assert response.status_code == 200, response.text  # 3 copies: most of the k = 4 nearest words (tuned)
    assert response.json()["added"] == 15 and response.json()["size"] == 15
    assert "B-GADGET" in knnie.load(dirs["ner"], device="cpu").label_space
    [found] = client.post("/entities", json={"texts": ["Gizmo X ships today ."]}).json()["results"]
    assert [(e["text"], e["type"]) for e in found["entities"]] == [("Gizmo X", "GADGET")]
    assert client.post("/memory/remove", json={"model": "ner", "source": "added"}).status_code == 200
    assert client.post("/entities", json={"texts": ["Gizmo X ships today ."]}).json()["results"] == before
    bad = {**sentence, "tags": ["X-GADGET", "O", "O", "O", "O"]}
    assert error(client.post("/memory/add", json={"model": "ner", "sentences": [bad]}), 422).startswith(
        "body.sentences.0")
    short = {**sentence, "tags": ["O"]}
    assert "1 tags for 5 tokens" in error(client.post("/memory/add", json={"sentences": [short]}), 422)
    assert "relation model" in error(client.post("/memory/add", json={"model": "ner", "relations": [
        {**HAMBURG, "label": "x"}]}), 400)
    assert "either" in error(client.post("/memory/add", json={"model": "ner"}), 422)


def test_write_endpoints_need_the_api_key_when_there_is_one(served_dirs, tmp_path):
    dirs = copied(served_dirs, tmp_path)
    client = TestClient(create_app(dirs, api_key="s3cret", device="cpu"))
    body = {"model": "re", "relations": [{**HAMBURG, "label": "flows past"}]}
    assert "X-API-Key" in error(client.post("/memory/add", json=body), 401)
    assert "wrong" in error(client.post("/memory/add", json=body, headers={"X-API-Key": "guess"}), 401)
    assert error(client.post("/memory/remove", json={"model": "re", "source": "added"}), 401)
    assert "live" not in knnie.load(dirs["re"], device="cpu").memories  # nothing written
    assert client.post("/memory/add", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.post("/relations", json={"items": [HAMBURG]}).status_code == 200  # reads need no key
    assert client.get("/health").json()["write_needs_key"] is True


def test_concurrent_writers_are_serialised_and_none_is_lost(served_dirs, tmp_path):
    """Twelve writers at once through one server, and as many through a second server over the same
    directory (another process would do the same): every addition is in the memory, also on disk."""
    dirs = copied(served_dirs, tmp_path)
    client, other = TestClient(create_app(dirs, device="cpu")), TestClient(create_app({"re": dirs["re"]}, device="cpu"))
    writers = 12

    def add(i: int) -> int:
        item = {"text": f"Writer {i} lives in Town{i} .", "head": {"start": 0, "end": len(f"Writer {i}")},
                "tail": {"start": len(f"Writer {i} lives in "), "end": len(f"Writer {i} lives in Town{i}")},
                "label": f"lives in {i % 3}"}
        return (client if i < writers else other).post("/memory/add", json={
            "model": "re", "source": f"w{i}", "relations": [item, item]}).status_code

    with ThreadPoolExecutor(2 * writers) as pool:
        assert list(pool.map(add, range(2 * writers))) == [200] * 2 * writers
    sources = sorted(f"w{i}" for i in range(2 * writers))
    reloaded = knnie.load(dirs["re"], device="cpu").memories["live"]
    assert len(reloaded) == 4 * writers and sorted(reloaded.sources) == sources
    live = client.get("/health").json()["models"]["re"]["memories"]["live"]
    assert set(live["sources"]) >= {f"w{i}" for i in range(writers)}  # its own, and those it re-read from disk


# -- batching ------------------------------------------------------------------------------
def test_concurrent_requests_share_one_encoder_call_and_get_the_same_answers(served_dirs, tmp_path):
    client = TestClient(create_app(served_dirs, device="cpu"))
    served = client.app.state.models.served["re"]
    calls, predict = [], served.model.predict

    def counting(examples, *args, **kwargs):
        calls.append(len(examples))
        return predict(examples, *args, **kwargs)

    served.model.predict = counting
    texts = [(f"Person{i} was born in City{i} .", len(f"Person{i}"), len(f"Person{i} was born in "))
             for i in range(10)]
    items = [{"text": t, "head": {"start": 0, "end": h}, "tail": {"start": s, "end": s + len(t.split()[4])}}
             for t, h, s in texts]
    alone = [client.post("/relations", json={"items": [item], "neighbours": 2}).json()["results"][0]
             for item in items]
    assert calls == [1] * len(items)
    calls.clear()
    with ThreadPoolExecutor(len(items)) as pool:
        served.lock.acquire()  # the worker waits for the model, so every request gathers in its queue
        try:
            futures = [pool.submit(client.post, "/relations", json={"items": [item], "neighbours": 2})
                       for item in items]
            deadline = time.monotonic() + 30
            while served.batcher.waiting < len(items) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            served.lock.release()
        together = [f.result().json()["results"][0] for f in futures]
    assert len(calls) < len(items) and calls == [len(items)]
    for a, b in zip(alone, together):
        assert a["prediction"] == b["prediction"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)
        assert [n["label"] for n in a["neighbours"]] == [n["label"] for n in b["neighbours"]]


def test_a_failing_request_in_a_batch_fails_alone():
    from knnie.service.batcher import Batcher

    lock = threading.Lock()

    def run(items, params):
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    batcher = Batcher(run, [lock], max_batch=8)
    with lock:
        futures = [batcher.submit([x]) for x in ("a", "bad", "c")]
        deadline = time.monotonic() + 10
        while batcher.waiting < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert futures[0].result(10) == ["A"] and futures[2].result(10) == ["C"]
    with pytest.raises(ValueError, match="bad item"):
        futures[1].result(10)
    batcher.close()


# -- broken models, the command ------------------------------------------------------------
def test_a_truncated_memory_fails_at_start_with_a_clear_message(served_dirs, tmp_path):
    dirs = copied(served_dirs, tmp_path)
    keys = dirs["re"] / "memories" / "train" / "keys.safetensors"
    keys.write_bytes(keys.read_bytes()[:100])
    with pytest.raises(DataError, match=r"keys\.safetensors"):
        create_app(dirs, device="cpu")
    result = CliRunner().invoke(cli, ["serve", f"re={dirs['re']}", "--device", "cpu"])
    assert result.exit_code == 1 and "keys.safetensors" in result.output and "Traceback" not in result.output


def test_a_memory_truncated_while_serving_makes_writes_503_not_a_crash(served_dirs, tmp_path):
    dirs = copied(served_dirs, tmp_path)
    client = TestClient(create_app(dirs, device="cpu"))
    keys = dirs["re"] / "memories" / "train" / "keys.safetensors"
    keys.write_bytes(keys.read_bytes()[:100])
    message = error(client.post("/memory/add", json={"model": "re", "memory": "train", "relations": [
        {**HAMBURG, "label": "x"}]}), 503)
    assert "keys.safetensors" in message
    assert client.post("/relations", json={"items": [HAMBURG]}).status_code == 200  # the loaded model still serves


def test_serve_warns_loudly_without_a_key_on_a_non_loopback_host(served_dirs, monkeypatch):
    runs = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: runs.append(kw))
    monkeypatch.delenv("KNNIE_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", str(served_dirs["re"]), "--host", "0.0.0.0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "NO API KEY" in result.output and runs[0]["host"] == "0.0.0.0"
    monkeypatch.setenv("KNNIE_API_KEY", "s3cret")
    result = CliRunner().invoke(cli, ["serve", str(served_dirs["re"]), "--host", "0.0.0.0", "--device", "cpu"])
    assert result.exit_code == 0 and "WARNING" not in result.output and "API key" in result.output
    result = CliRunner().invoke(cli, ["serve", str(served_dirs["re"]), "--api-key-env", "KNNIE_NO_SUCH_VAR"])
    assert result.exit_code == 1 and "KNNIE_NO_SUCH_VAR" in result.output


def test_model_arguments_and_loopback_hosts():
    assert parse_model_args(["runs/ner", "rel=runs/x"]) == {"ner": Path("runs/ner"), "rel": Path("runs/x")}
    with pytest.raises(knnie.KnnieError, match="two models named 'm'"):
        parse_model_args(["a/m", "b/m"])
    assert serve.is_loopback("127.0.0.1") and serve.is_loopback("::1") and serve.is_loopback("localhost")
    assert not serve.is_loopback("0.0.0.0") and not serve.is_loopback("example.org")

"""LLM backends: the OpenAI-compatible HTTP backend against a local server (cache, retries, clear errors),
the split GGUF assembled, verified and re-assembled when corrupt, backend choice and prompt templates."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest

from knnie import KnnieError
from knnie.llm import HttpLLM, LLMError, SplitModel, load_llm, messages, split_model_file
from tests.llm_server import chat_answer, llm_server

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}
ASK = [{"role": "user", "content": "say a"}]


def ok(body: dict, n: int) -> tuple[int, dict]:
    return 200, chat_answer(json.dumps({"a": f"answer {n}"}))


def test_http_backend_sends_an_openai_request_and_caches_the_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNIE_LLM_API_KEY", "secret-key")
    with llm_server(ok) as (url, received):
        llm = HttpLLM(url, model="served-model", cache=tmp_path / "cache", backoff=0)
        first = llm.complete_json(ASK, SCHEMA, max_tokens=50, temperature=0.5, seed=7)
        again = HttpLLM(url, model="served-model", cache=tmp_path / "cache").complete_json(ASK, SCHEMA, 50, 0.5, 7)
        other_seed = llm.complete_json(ASK, SCHEMA, 50, 0.5, 8)
    assert (first.text, first.finish_reason, first.truncated) == ('{"a": "answer 0"}', "stop", False)
    assert again == first  # a rerun of the same request is read from the cache: the server saw it once
    assert other_seed.text == '{"a": "answer 1"}' and len(received) == 2
    body = received[0]
    assert body["_path"] == "/v1/chat/completions" and body["_auth"] == "Bearer secret-key"
    assert (body["model"], body["messages"], body["max_tokens"], body["temperature"], body["seed"]) == \
        ("served-model", ASK, 50, 0.5, 7)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}


def test_http_backend_retries_after_a_server_error(tmp_path):
    with llm_server(lambda body, n: (500, {"error": "busy"}) if n < 2 else ok(body, n)) as (url, received):
        answer = HttpLLM(url, cache=False, retries=3, backoff=0.01).complete_json(ASK, SCHEMA, 50, 0.0, 0)
    assert answer.text == '{"a": "answer 2"}' and len(received) == 3


@pytest.mark.parametrize(("status", "error", "message", "requests"), [
    (503, "overloaded", r"failed 3 times; last: HTTP 503 .*overloaded", 3),  # retried, then a clear error
    (401, "bad key", r"refused the request \(HTTP 401 .*bad key", 1),  # a refusal is not retried
])
def test_http_backend_failures_end_in_a_clear_error(status, error, message, requests):
    with llm_server(lambda body, n: (status, {"error": error})) as (url, received), \
            pytest.raises(LLMError, match=message):
        HttpLLM(url, cache=False, retries=2, backoff=0.01).complete_json(ASK, SCHEMA, 50, 0.0, 0)
    assert len(received) == requests


def test_http_backend_retries_a_request_that_times_out():
    def slow_first(body: dict, n: int) -> tuple[int, dict]:
        if n == 0:
            time.sleep(1.0)
        return ok(body, n)

    with llm_server(slow_first) as (url, received):
        answer = HttpLLM(url, cache=False, timeout=0.2, retries=1, backoff=0.01).complete_json(ASK, SCHEMA, 5, 0, 0)
    assert answer.text == '{"a": "answer 1"}' and len(received) == 2


def test_http_backend_names_the_server_when_the_connection_is_refused():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LLMError, match=rf"127.0.0.1:{port}/v1/chat/completions failed 2 times; last: .*refused"):
        HttpLLM(f"http://127.0.0.1:{port}", cache=False, retries=1, backoff=0.01).complete_json(ASK, SCHEMA, 5, 0, 0)


def test_http_backend_refuses_an_answer_without_choices():
    with llm_server(lambda body, n: (200, {"oops": 1})) as (url, _), pytest.raises(LLMError, match="without choices"):
        HttpLLM(url, cache=False).complete_json(ASK, SCHEMA, 50, 0.0, 0)


@pytest.mark.parametrize(("url", "endpoint"), [
    ("http://h:8000", "http://h:8000/v1/chat/completions"),
    ("http://vllm-host/v1/", "http://vllm-host/v1/chat/completions"),
    ("https://api.example/v2/chat/completions", "https://api.example/v2/chat/completions"),
])
def test_http_endpoint_from_the_base_url(url, endpoint):
    assert HttpLLM(url, cache=False).endpoint == endpoint


def split_parts(tmp_path: Path, data: bytes, n: int = 3) -> tuple[SplitModel, list[Path]]:
    """A fake model cut into parts, with the spec that describes the whole."""
    cut = len(data) // n + 1
    parts = []
    for i in range(n):
        parts.append(tmp_path / f"model.gguf.part{i + 1}")
        parts[-1].write_bytes(data[i * cut:(i + 1) * cut])
    spec = SplitModel(tuple(f"fake-part{i}" for i in range(n)), len(data), hashlib.sha256(data).hexdigest(),
                      "fake.gguf", ".part")
    return spec, parts


def test_split_model_is_assembled_once_and_reassembled_when_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNIE_CACHE", str(tmp_path / "cache"))
    data = b"GGUF" + bytes(range(256)) * 40
    spec, parts = split_parts(tmp_path, data)
    path = split_model_file(spec, parts)
    assert path == tmp_path / "cache" / "llm" / "fake.gguf" and path.read_bytes() == data
    assert split_model_file(spec, parts=[]) == path  # intact: the parts are not needed again
    corrupt = bytearray(data)
    corrupt[100] ^= 0xFF  # same size, one byte changed: only the hash tells
    path.write_bytes(bytes(corrupt))
    assert split_model_file(spec, parts).read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf"]  # no temporary leftovers


def test_split_model_refuses_parts_that_do_not_make_the_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNIE_CACHE", str(tmp_path / "cache"))
    spec, parts = split_parts(tmp_path, b"GGUF" + bytes(range(256)) * 40)
    with pytest.raises(KnnieError, match=r"the joined parts of fake.gguf are .* reinstall the part packages"):
        split_model_file(spec, parts[::-1])
    assert list((tmp_path / "cache" / "llm").iterdir()) == []


def test_split_model_without_its_packages_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNIE_CACHE", str(tmp_path / "cache"))
    spec, _ = split_parts(tmp_path, b"x" * 10)
    with pytest.raises(KnnieError, match=r"package fake-part0 is not installed: .*knnie\[llm\]"):
        split_model_file(spec)


def test_load_llm_names_what_it_accepts(tmp_path):
    with pytest.raises(LLMError, match="unknown LLM 'gpt-9': expected 'local'"):
        load_llm("gpt-9")
    assert isinstance(load_llm("http://127.0.0.1:1/v1", model="m"), HttpLLM)
    with pytest.raises(LLMError, match="no GGUF model at"):
        load_llm(str(tmp_path / "missing.gguf"))


def test_a_corrupt_gguf_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LLMError, match="cannot load the GGUF model"):
        load_llm(str(bad))


def test_prompts_are_templates_filled_in():
    [system, user] = messages("explain", name="founded by", description="founder of the organisation",
                              sentence="Acme was founded by Ada.", head="Acme", tail="Ada")
    assert system["role"] == "system" and user["role"] == "user"
    assert 'Relation "founded by": founder of the organisation' in user["content"] and "$" not in user["content"]
    with pytest.raises(KeyError, match="tail"):
        messages("explain", name="n", description="d", sentence="s", head="h")

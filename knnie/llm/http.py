"""An OpenAI-compatible chat-completions server as the LLM: vLLM, a llama.cpp server, Ollama or a hosted API.

Requests go to `<base>/chat/completions` with the JSON schema as `response_format` (OpenAI's
"json_schema" form, which those servers follow). A request that times out, cannot connect, or is
answered 429 or 5xx is tried again after a growing pause; when every try fails, the error names the
server and the last failure. Each answer is cached on disk under a hash of the whole request, so a
rerun asks nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from knnie.io import atomic_path
from knnie.llm.base import Completion, LLMError, Message
from knnie.parts import cache_dir

RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}


class HttpLLM:
    """An OpenAI-compatible server at `url` (its base, e.g. http://localhost:8000/v1; a bare host gets
    /v1). The model is `model`, else $KNNIE_LLM_MODEL; the API key $KNNIE_LLM_API_KEY, else $OPENAI_API_KEY
    (none for a local server). `retries` tries after the first, `backoff` seconds before the first retry,
    doubling; answers are cached in the folder `cache` (True: the knnie cache's llm/http; False: none)."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 4, backoff: float = 1.0, cache: Path | bool = True) -> None:
        base = url.rstrip("/").removesuffix("/chat/completions")
        self.endpoint = f"{base if re.search(r'/v[0-9]+$', base) else base + '/v1'}/chat/completions"
        self.model = model or os.environ.get("KNNIE_LLM_MODEL") or "default"
        self.api_key = api_key or os.environ.get("KNNIE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.cache = (cache_dir("llm") / "http" if cache is True else None) if isinstance(cache, bool) else Path(cache)
        self.name = f"{self.model} at {self.endpoint}"

    def complete_json(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, temperature: float,
                      seed: int) -> Completion:
        request = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                   "seed": seed, "response_format": {"type": "json_schema",
                                                     "json_schema": {"name": "answer", "schema": schema}}}
        blob = json.dumps({"endpoint": self.endpoint, **request}, sort_keys=True, ensure_ascii=False)
        cached = self.cache / f"{hashlib.sha256(blob.encode()).hexdigest()}.json" if self.cache else None
        if cached is not None and cached.is_file():
            saved = json.loads(cached.read_text(encoding="utf-8"))
            return Completion(saved["text"], saved["finish_reason"])
        completion = self._post(request)
        if cached is not None:
            with atomic_path(cached) as tmp:
                tmp.write_text(json.dumps({"text": completion.text, "finish_reason": completion.finish_reason},
                                          ensure_ascii=False), encoding="utf-8")
        return completion

    def _post(self, request: dict[str, Any]) -> Completion:
        """One answer of the server, tried again on failures that may pass."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = json.dumps(request, ensure_ascii=False).encode()
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as response:
                    return _completion(json.loads(response.read().decode("utf-8")), self.endpoint)
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", errors="replace")[:200]
                failure = f"HTTP {e.code} {e.reason}: {detail}".strip()
                if e.code not in RETRIED_STATUS:
                    raise LLMError(f"the LLM server {self.endpoint} refused the request ({failure})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                failure = str(getattr(e, "reason", e)) or type(e).__name__
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                failure = f"an answer that is not JSON ({e})"
        raise LLMError(f"the LLM server {self.endpoint} failed {self.retries + 1} times; last: {failure}")


def _completion(answer: Any, endpoint: str) -> Completion:
    """The first choice of a chat-completions answer."""
    try:
        choice = answer["choices"][0]
        return Completion(choice["message"]["content"] or "", choice.get("finish_reason") or "stop")
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"the LLM server {endpoint} answered without choices[0].message.content: "
                       f"{json.dumps(answer)[:200]}") from None

"""The HTTP service: `create_app(models)` gives a FastAPI app over knnie models.

Endpoints: POST /extract (text → entities → relations), /relations (given head and tail),
/entities, /memory/add and /memory/remove (write endpoints: they need the API key when the
server has one), GET /health; OpenAPI docs at /docs and the web page at /.

Every error is JSON `{"error": "<one line>"}` (validation errors add `detail`, one entry per
problem, located by field): 400 a request that does not fit the models, 401 a missing or
wrong API key, 404 an unknown model, memory or source, 413 a body over the size limit, 422 a
malformed or invalid request, 409 a write the memory refuses, 503 a model whose files cannot be
read. A traceback goes to the server's log, never to the client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from knnie.data.readers import example_from_text
from knnie.data.schema import RelationExample, Span, TaggedSentence
from knnie.data.tagged import bio_tag
from knnie.errors import DataError, KnnieError, NotFoundError
from knnie.service.models import Models, Served
from knnie.service.schemas import (
    EntitiesRequest,
    ExtractRequest,
    MemoryAddRequest,
    MemoryRemoveRequest,
    RelationItem,
    RelationsRequest,
)
from knnie.tasks.ner import EntityRecognizer
from knnie.tasks.re import RelationExtractor

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 4 << 20  # 4 MiB: 64 texts of 20,000 characters, JSON-escaped, fit
API_KEY_HEADER = "X-API-Key"
T = TypeVar("T")


def create_app(models: Mapping[str, str | Path], api_key: str | None = None, device: str = "auto",
               max_batch: int = 64, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """A FastAPI app serving the model directories `models` (name → directory), each opened with
    `knnie.load` now, so a broken model fails here with a clear message. With `api_key`, the write
    endpoints need it in the X-API-Key header. Requests to one model are batched up to `max_batch`
    items per encoder call."""
    served = Models(models, device, max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        served.close()

    app = FastAPIOffline(title="knnie", version="0.1.0", lifespan=lifespan,  # /docs served without a CDN
                         description="Retrieval-augmented information extraction: entities, relations, and the "
                                     "memory entries behind each decision.")
    app.state.models = served
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _add_error_handlers(app)
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                          description="Needed by the write endpoints when the server was started with a key.")

    def writer(key: str | None = Depends(header)) -> None:
        if api_key is not None and not (key and hmac.compare_digest(key.encode(), api_key.encode())):
            raise HTTPException(401, f"this endpoint changes a memory: give the server's API key in the "
                                     f"{API_KEY_HEADER} header" + (" (the one given is wrong)" if key else ""))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    def health() -> dict[str, Any]:
        """The served models: task, directory, labels and memories (size, sources)."""
        return {"status": "ok", "write_needs_key": api_key is not None,
                "models": {name: s.describe() for name, s in served.served.items()}}

    @app.post("/entities")
    async def entities(req: EntitiesRequest) -> dict[str, Any]:
        """The entities of each text: type, character offsets, score and (with `neighbours`) the
        training words behind each."""
        ner = served.get(req.model, EntityRecognizer.task)
        sentences = await run_in_threadpool(_located, "texts", lambda i, t: ner.model.as_sentences([t])[0], req.texts)
        predictions = await _result(ner.batcher.submit(sentences, (req.neighbours,)))
        return {"model": ner.name, "results": [p.to_dict() for p in predictions]}

    @app.post("/relations")
    async def relations(req: RelationsRequest) -> dict[str, Any]:
        """The relation between each given head and tail (character spans into `text`, or token spans
        into `tokens`), its probability, the split between the model and the memory, and neighbours."""
        re = served.get(req.model, RelationExtractor.task)
        examples = await run_in_threadpool(_located, "items", lambda i, item: relation_example(item), req.items)
        predictions = await _result(re.batcher.submit(examples, (req.neighbours,)))
        return {"model": re.name, "results": [p.to_row(ex) for ex, p in zip(examples, predictions)]}

    @app.post("/extract")
    async def extract(req: ExtractRequest) -> dict[str, Any]:
        """Raw text → entities (NER model `ner`) → the relation of every pair of them in a sentence (or
        `window` sentences apart; relation model `re`), with character offsets and, with
        `neighbours`, the memory entries behind each decision."""
        ner = served.get(req.ner, EntityRecognizer.task, "ner")
        re = served.get(req.re, RelationExtractor.task, "re")
        extractions = await _result(served.pipeline(ner, re).submit(req.texts, (req.neighbours, req.window)))
        return {"ner": ner.name, "re": re.name, "results": [e.to_dict() for e in extractions]}

    @app.post("/memory/add", dependencies=[Depends(writer)])
    async def memory_add(req: MemoryAddRequest) -> dict[str, Any]:
        """Add labelled examples to a memory of a model (created if absent) and save it in the
        model's directory: the next prediction consults them. Undo with /memory/remove and the same
        `source`."""
        target = served.get(req.model, RelationExtractor.task if req.relations is not None else EntityRecognizer.task)
        if req.relations is not None:
            examples: list[Any] = await run_in_threadpool(
                _located, "relations", lambda i, item: relation_example(item, item.label), req.relations)
        else:
            examples = await run_in_threadpool(_located, "sentences", lambda i, s: TaggedSentence(
                list(s.tokens), [bio_tag(tag, None, None) for tag in s.tags], source=f"sentences[{i}]"),
                                               req.sentences)
        added, size = await _write(target, lambda m: (
            m.add_examples(examples, memory=req.memory, source=req.source, save_to=target.path),
            len(m.memories[req.memory])))
        return {"model": target.name, "memory": req.memory, "source": req.source, "added": added, "size": size}

    @app.post("/memory/remove", dependencies=[Depends(writer)])
    async def memory_remove(req: MemoryRemoveRequest) -> dict[str, Any]:
        """Remove every entry added with `source` (from memory `memory`, or from every memory) and save."""
        target = served.get(req.model, None)
        removed, sizes = await _write(target, lambda m: (
            m.remove_examples(req.source, memory=req.memory, save_to=target.path),
            {name: len(memory) for name, memory in m.memories.items()}))
        return {"model": target.name, "source": req.source, "removed": removed, "memories": sizes}

    return app


def relation_example(item: RelationItem, label: str | None = None) -> RelationExample:
    """A request's relation item as an example: raw text is tokenised, cut at the spans' edges."""
    head, tail = item.head, item.tail
    if item.text is not None:
        return example_from_text(item.text, (head.start, head.end, head.type), (tail.start, tail.end, tail.type),
                                 label)
    return RelationExample(list(item.tokens), Span(head.start, head.end, head.type),
                           Span(tail.start, tail.end, tail.type), label)


def _located(name: str, convert: Callable[[int, Any], T], items: list[Any]) -> list[T]:
    """Convert each request item; a DataError becomes a 422 located at the item (`name[i]`) and field."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(convert(i, item))
        except DataError as e:
            loc = ("body", name, i, *([e.field] if e.field else []))
            raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": e.message}]) from None
    return out


async def _result(future: Any) -> Any:
    return await asyncio.wrap_future(future)


async def _write(target: Served, change: Callable[[Any], T]) -> T:
    """Run a memory write (and read what it left) on the model with its lock held, off the event loop.
    A memory or source that is not there is a 404, a DataError (the model's files on disk cannot be
    read) a 503, another refusal a 409."""

    def locked() -> T:
        with target.lock:
            return change(target.model)

    try:
        return await run_in_threadpool(locked)
    except NotFoundError as e:
        raise HTTPException(404, f"model '{target.name}': {e}") from None
    except DataError as e:
        log.error("write to model '%s' failed: %s", target.name, e)
        raise HTTPException(503, f"model '{target.name}' could not be written: {e}") from None
    except KnnieError as e:
        raise HTTPException(409, str(e)) from None


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON with a one-line `error`; no traceback reaches the client."""

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        detail = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in e.errors()]
        lines = [f"malformed JSON at character {err['loc'][-1]} of the body ({err.get('ctx', {}).get('error')})"
                 if err["type"] == "json_invalid" else f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                 for err in e.errors()]
        more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
        return JSONResponse(jsonable_encoder({"error": "; ".join(lines[:3]) + more, "detail": detail}), 422)

    @app.exception_handler(KnnieError)
    async def model_error(_: Request, e: KnnieError) -> JSONResponse:
        log.error("request failed: %s", e)
        return JSONResponse({"error": str(e)}, 503)

    @app.exception_handler(Exception)
    async def crash(_: Request, e: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(e).__name__}); see the server's log"}, 500)


class BodyLimit:
    """Refuse (413) a request body over `max_bytes`, by its Content-Length or as it arrives, before
    the app reads it; the body read is handed on as it came."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        body, given = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"error": f"request body over {self.max_bytes} bytes: send fewer or shorter texts"},
                           413)(scope, receive, send)

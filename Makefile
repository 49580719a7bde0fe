# reindex — `make demo`, `make test` and `make bench` (all set up first).
SHELL := /bin/bash
PYTHON ?= python3
SWIFT ?= swift
CONFIG ?= debug
BIN := .build/$(CONFIG)/reindex
DEMO_DIR := var/demo

.PHONY: all setup build release test demo bench clean

all: build

setup:
	@./fixtures/setup.sh

build: setup
	$(SWIFT) build -c $(CONFIG)

release:
	$(MAKE) build CONFIG=release

test: build
	$(SWIFT) build --build-tests
	@mkdir -p var
	$(SWIFT) test --skip-build 2>&1 | tee var/test.log; exit $${PIPESTATUS[0]}

demo: build
	@mkdir -p $(DEMO_DIR)
	@test -f $(DEMO_DIR)/groupgpt.db || $(PYTHON) fixtures/make_primary.py --out $(DEMO_DIR)/groupgpt.db
	@echo "== full rebuild"
	$(BIN) --job jobs/demo.yml --full
	@echo "== change the primary (5 new, 3 edited, 2 deleted messages), then an incremental run"
	@$(PYTHON) fixtures/mutate_primary.py --db $(DEMO_DIR)/groupgpt.db --insert 5 --update 3 --delete 2 >/dev/null
	@echo "== dry run first"
	$(BIN) --job jobs/demo.yml --dry-run
	$(BIN) --job jobs/demo.yml
	@echo "== a no-change incremental run"
	$(BIN) --job jobs/demo.yml

# Benchmark: 10k and 100k messages (BENCH_SIZE=1000000 adds 1M), the peer at 10k (BENCH_PEER_SIZE=100000 for 100k).
bench: release
	@./fixtures/bench/setup_peer.sh
	$(PYTHON) fixtures/bench/bench.py

clean:
	rm -rf .build var

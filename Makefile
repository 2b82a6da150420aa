# The README names two commands: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
SOURCES := $(shell find cni configgen node-agent lib scripts/build.mjs scripts/sea.mjs scripts/etcd3-protos.mjs -name '*.ts' -o -name '*.mjs' 2>/dev/null) package-lock.json

.PHONY: deps build test unit demo bench clean typecheck

deps:
	@bash scripts/install-deps.sh

dist/.built: $(SOURCES)
	@node scripts/build.mjs
	@touch $@

build: deps dist/.built

typecheck: deps
	npx tsc --noEmit

test: build typecheck
	npx vitest run

unit: deps
	npx vitest run test/unit

demo: build
	npx tsx scripts/demo.ts

bench: build
	npx tsx bench/run.ts

clean:
	rm -rf dist

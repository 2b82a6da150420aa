# The README names two commands: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
SOURCES := $(shell find cmd cni configgen node-agent lib scripts/build.mjs scripts/bundle.mjs scripts/sea.mjs scripts/etcd3-protos.mjs -name '*.ts' -o -name '*.mjs' -o -name '*.c' -o -name '*.h' 2>/dev/null) package-lock.json

.PHONY: deps build test unit demo bench soak clean typecheck images images-k8s kube-tools kube-tools-conformance conformance

deps:
	@bash scripts/install-deps.sh

dist/.built: $(SOURCES)
	@node scripts/build.mjs
	@touch $@

build: deps dist/.built

typecheck: deps
	npx tsc --noEmit

# The Kubernetes tests' programs and images, cached in /var/cache/warren (about 30 minutes
# once on a fresh machine, 2 s after): listed in dist/kube-tools.json.
kube-tools: build
	@bash scripts/kube-tools.sh

test: build typecheck kube-tools
	npx vitest run

unit: deps
	npx vitest run test/unit

demo: build
	npx tsx scripts/demo.ts

bench: build
	npx tsx bench/run.ts

# Churn and crashes (bench/soak.ts), not part of `make test`: 10,000 ADD/DEL cycles 20 at a
# time, then 200 ADDs SIGKILLed at a random moment and cleaned by DEL or GC; zero residue and
# flat RSS of OVS's daemons, or it exits non-zero. Shorter: SOAK_CYCLES, SOAK_PARALLEL, SOAK_KILLS.
soak: build
	npx tsx bench/soak.ts

# Kubernetes' own network conformance specs (e2e.test of the same Kubernetes version) against
# the emulated cluster on Warren; not part of `make test`. kube-tools-conformance adds e2e.test,
# agnhost and the e2e images to the cached tools (a fresh machine: about 25 minutes more, once)
# and lists them in dist/kube-tools.conformance.json. Reports in dist/conformance/.
kube-tools-conformance: build
	@bash scripts/kube-tools.sh --conformance

conformance: build kube-tools-conformance
	npx tsx scripts/conformance.ts

# Container images for the Kubernetes tests, as OCI archives (scripts/images.sh prints
# ROLE ARCHIVE REF... per image); images-k8s adds the control plane from scripts/k8s-tools.sh.
# Every image is imported and run by the Kubernetes test (and `make conformance`).
images: build
	@bash scripts/images.sh

images-k8s: build
	@bash scripts/images.sh --k8s-bin "$$(bash scripts/k8s-tools.sh)"


clean:
	rm -rf dist

# Linnet build, test and benchmark entry points. Run `make help` for a list.
GO        ?= go
BIN       := bin/linnet
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/linnet-mesh/linnet/internal/cli.Version=$(VERSION)
PKGS      := ./...
FUZZTIME  ?= 20s
BENCH     ?= .
COUNT     ?= 1
VECTORS   ?= internal/naming/testdata/dtab-vectors.json
TESTFLAGS ?=

.PHONY: help build build-slim test test-short deps demo vectors fuzz bench bench-go lint fmt vet clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/linnet (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/linnet

build-slim: ## build bin/linnet-slim: linnet without the Kubernetes, etcd, Consul, ZooKeeper and gRPC mesh plug-ins (11 MB less at start)
	CGO_ENABLED=0 $(GO) build -trimpath -tags linnet_slim -ldflags '$(LDFLAGS)-slim' -o bin/linnet-slim ./cmd/linnet

deps: ## install test dependencies that are missing (apt-get, go install)
	./scripts/test-deps.sh

test: deps build ## install what is missing, then run the whole suite with -race
	$(GO) vet $(PKGS)
	LINNET_BIN=$(CURDIR)/$(BIN) LINNET_K8S_WAIT=$${LINNET_K8S_WAIT:-35m} $(GO) test -race -timeout 45m $(TESTFLAGS) $(PKGS)

test-short: ## fast unit tests only (no external peers)
	$(GO) test -race -short $(PKGS)

demo: build ## the walkthrough on one machine (Ctrl-C stops it)
	./$(BIN) demo

vectors: ## run the dtab conformance test over VECTORS=FILE; ends with "N passed, M failed"
	@out=$$(LINNET_VECTORS=$(abspath $(VECTORS)) $(GO) test -count=1 -run '^TestConformance$$' -v ./internal/naming/ 2>&1); rc=$$?; \
	  if [ $$rc -ne 0 ]; then printf '%s\n' "$$out" | grep -Ev '^([0-9]+ passed, [0-9]+ failed|=== RUN|    --- PASS)'; fi; \
	  summary=$$(printf '%s\n' "$$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$$'); \
	  if [ -n "$$summary" ]; then echo "$$summary"; else echo "0 passed, 0 failed"; rc=1; fi; \
	  exit $$rc

fuzz: ## run every fuzz target for FUZZTIME each (scripts/fuzz.sh)
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME)

bench: build ## proxy benchmark: wrk/ab (HTTP/1.1) and h2load (HTTP/2) against direct, linnet, nginx, haproxy; ends with the memory floors
	./scripts/bench.sh

bench-go: ## Go micro-benchmarks
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS)

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo 'gofmt needed'; exit 1)
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck $(PKGS)

fmt: ## gofmt -s -w
	gofmt -s -w .

clean: ## remove build outputs
	rm -rf bin

# gridedge build, test and run targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Packages that run on the gateway: tested natively and under qemu-user.
EDGE_PKGS := ./edge/... ./hardware/... ./shared/... ./cmd/gridedge-agent
TEST_TIMEOUT ?= 12m
QEMU_TEST_TIMEOUT ?= 12m

.PHONY: help build cross generate demo test test-native test-arm deps vet fmt-check fuzz bench soak load package image image-push clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the three binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/gridedge-agent ./cmd/gridedge-collector ./cmd/gridedge-sim

cross: ## cross-compile the agent for linux armv6, armv7, arm64, amd64 (CGO off)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gridedge-agent-linux-armv6 ./cmd/gridedge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gridedge-agent-linux-armv7 ./cmd/gridedge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gridedge-agent-linux-arm64 ./cmd/gridedge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gridedge-agent-linux-amd64 ./cmd/gridedge-agent

generate: ## regenerate the wire contract's Go code (needs protoc and protoc-gen-go)
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler"; exit 1; }
	@command -v protoc-gen-go >/dev/null || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc --go_out=. --go_opt=paths=source_relative shared/wire/gridedge.proto

DEMO_HTTP ?= 127.0.0.1:8080
DEMO_MQTT ?= 127.0.0.1:18830
DEMO_DIR ?= $(CURDIR)/.demo
DEMO_METERS ?= 20
DEMO_BACKFILL ?= 6h
DEMO_SPEED ?= 1440
DEMO_FRESH ?=
DEMO_CREDS := $(DEMO_DIR)/sim-credentials
demo: build ## collector + embedded broker + 20 simulated meters: the last 6 h backfilled fast, then real time; dashboard on http://127.0.0.1:8080/
	@# The collector's store, the meters' credentials and the meters' state
	@# belong together: a second run continues all three; when one is missing
	@# (or DEMO_FRESH=1) all start fresh, so they never disagree.
	@if [ -n "$(DEMO_FRESH)" ] || ! [ -s $(DEMO_CREDS) ] || ! [ -d $(DEMO_DIR)/collector ] || ! [ -s $(DEMO_DIR)/sim/sim-0001/sim.json ]; then \
	  [ -d $(DEMO_DIR) ] && echo "gridedge demo: starting fresh in $(DEMO_DIR)"; \
	  rm -rf $(DEMO_DIR); mkdir -p $(DEMO_DIR); \
	  $(BIN)/gridedge-collector devices add -data-dir $(DEMO_DIR)/collector -cost 4 -secrets-out $(DEMO_CREDS) \
	    $$(for i in $$(seq 1 $(DEMO_METERS)); do printf 'sim/sim-%04d ' $$i; done) >/dev/null; \
	else echo "gridedge demo: continuing $(DEMO_DIR) (DEMO_FRESH=1 starts over)"; fi
	@echo "gridedge demo: dashboard on http://$(DEMO_HTTP)/  (Ctrl-C stops)"
	@echo "  the meters backfill up to the last $(DEMO_BACKFILL) at $(DEMO_SPEED)x, then sample the present every 10 s"
	@echo "  try: curl -s 'http://$(DEMO_HTTP)/api/v1/results?pipeline=energy_15m&device=sim-0001&channel=rest'"
	@$(BIN)/gridedge-collector -embedded-broker $(DEMO_MQTT) -mqtt-url tcp://$(DEMO_MQTT) -http-addr $(DEMO_HTTP) -data-dir $(DEMO_DIR)/collector & collector=$$!; \
	sim=; \
	stop() { trap - INT TERM; kill -TERM $$sim $$collector 2>/dev/null; wait; echo "gridedge demo: stopped; make demo continues it"; exit 0; }; \
	trap stop INT TERM; \
	for i in $$(seq 1 60); do (exec 3<>/dev/tcp/$(word 1,$(subst :, ,$(DEMO_MQTT)))/$(word 2,$(subst :, ,$(DEMO_MQTT)))) 2>/dev/null && break; sleep 0.5; done; \
	$(BIN)/gridedge-sim -mqtt-url tcp://$(DEMO_MQTT) -credentials $(DEMO_CREDS) -meters $(DEMO_METERS) \
	  -backfill $(DEMO_BACKFILL) -duration 0 -speed $(DEMO_SPEED) -data-dir $(DEMO_DIR)/sim & sim=$$!; \
	wait $$collector; status=$$?; kill -TERM $$sim 2>/dev/null; wait; exit $$status

deps: ## install test dependencies (Mosquitto, qemu-user-static, chromium, Prometheus) when missing
	@bash .ci/install-deps

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) vet $(EDGE_PKGS)

test: deps fmt-check vet test-native test-arm ## everything CI runs: vet, all tests, edge tests under qemu arm/arm64

test-native:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-arm: ## edge, hardware and shared tests under qemu-user: armv6, armv7, arm64
	CGO_ENABLED=0 GOARCH=arm GOARM=6 $(GO) test -count=1 -timeout $(QEMU_TEST_TIMEOUT) -exec qemu-arm-static $(EDGE_PKGS)
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test -count=1 -timeout $(QEMU_TEST_TIMEOUT) -exec qemu-arm-static $(EDGE_PKGS)
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -count=1 -timeout $(QEMU_TEST_TIMEOUT) -exec qemu-aarch64-static $(EDGE_PKGS)

package: cross ## agent .deb packages for armhf (GOARM=6), arm64, amd64 into dist/
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) $(GO) run ./deploy/pkg -bin $(BIN) -out dist -version $(VERSION)

REGISTRY ?= localhost:5000
IMAGE = $(REGISTRY)/gridedge-collector:$(VERSION)
image: ## the collector's container image $(REGISTRY)/gridedge-collector:$(VERSION) from deploy/Dockerfile (needs docker)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) .

image-push: image ## push the image to REGISTRY (default localhost:5000) for deploy/k8s
	docker push $(IMAGE)
	@echo "pushed $(IMAGE): set newName: $(REGISTRY)/gridedge-collector and newTag: $(VERSION) in deploy/k8s/kustomization.yaml, then kubectl apply -k deploy/k8s/"

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: ## benchmarks with a report (readings/s, bytes, allocations)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./... | tee bench.txt

SOAK_DAYS ?= 7
soak: ## the buffer's simulated week (8 ch at 1 Hz, outages) natively and under qemu armv7 and arm64
	$(GO) test -count=1 -run TestSoak -v -timeout 90m ./edge/soak/ -soak.days=$(SOAK_DAYS)
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test -count=1 -exec qemu-arm-static -run TestSoak -v -timeout 180m ./edge/soak/ -soak.days=$(SOAK_DAYS)
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64-static -run TestSoak -v -timeout 180m ./edge/soak/ -soak.days=$(SOAK_DAYS)

LOAD_METERS ?= 4000
LOAD_RAMP ?= 100/5s
LOAD_DURATION ?= 10m
LOAD_BUFFER ?= memory
LOAD_ARGS ?=
load: build ## load test: Mosquitto + collector + LOAD_METERS simulated meters at 1 Hz (real time), report in load-report.json
	$(GO) build -o $(BIN)/ ./cmd/gridedge-load
	@bash .ci/install-deps
	$(BIN)/gridedge-load -bin $(BIN) -meters $(LOAD_METERS) -ramp '$(LOAD_RAMP)' -duration $(LOAD_DURATION) -buffer $(LOAD_BUFFER) -out load-report.json $(LOAD_ARGS)

clean:
	rm -rf $(BIN) dist .demo bench.txt load-report.json

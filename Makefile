# Shoal's front door. `make help` lists the targets.

GO        ?= go
BIN       ?= bin/shoal
# Extra flags for `make run`, e.g. make run ARGS='--log-level debug'.
ARGS      ?=
FUZZ_PKGS ?= ./codec ./internal/mosqdb ./auth ./auth/scram ./internal/cluster
# Per fuzz target: `make fuzz` runs each this long; `make test` uses 5s.
FUZZTIME  ?= 60s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help run build deb test race stress fuzz bench bench-quick bench-pkg profile lint deps vendor-uplot clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

run: ## build and start the broker on 127.0.0.1:1883 with the embedded config
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/broker $(ARGS)

build: ## build bin/shoal
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/broker

# The Debian package. Its version comes from git tags (packaging/version.sh:
# v1.2.0 -> 1.2.0, untagged -> 0.0.0~git<time>.<hash>); the binary is static
# (no libc to depend on) and says the same version. nfpm is pinned by
# tools/go.mod and built from the module proxy like any dependency.
DEB_VERSION = $(shell packaging/version.sh)
DEB_ARCH    = $(shell $(GO) env GOARCH)
NFPM        = build/tools/nfpm

deb: ## build build/shoal_VERSION_ARCH.deb: /usr/bin/shoal, /etc/shoal/shoal.yaml, the systemd unit
	@mkdir -p build/deb build/tools
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(DEB_VERSION)' -o build/deb/shoal ./cmd/broker
	$(GO) run ./packaging/sysconfig -target deb -o build/deb/shoal.yaml
	$(GO) -C tools build -o $(CURDIR)/$(NFPM) github.com/goreleaser/nfpm/v2/cmd/nfpm
	rm -f build/shoal_*.deb
	VERSION='$(DEB_VERSION)' ARCH='$(DEB_ARCH)' $(NFPM) package --config packaging/deb/nfpm.yaml --packager deb --target build/
	@ls -l build/shoal_*.deb

test: deps ## install test peers if missing, vet, all tests, then a short fuzz (200k inputs) of each fuzz target of make fuzz
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 10m ./...
	cd bench/harness/chart && $(GO) test -count=1 ./...
	cd bench/peers/mochi && $(GO) vet ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=200000x

race: ## all tests under the race detector
	$(GO) test -race -count=1 -timeout 20m ./...

# Crash rounds for `make stress` (make test runs 3).
CRASH_ROUNDS ?= 40

# Rounds of make stress's cluster test: three nodes, one killed at random;
# its rolling restarts of three nodes; and its freezes (SIGSTOP past the
# takeover timeout, then SIGCONT) of one node of three.
CLUSTER_ROUNDS ?= 20
ROLL_ROUNDS ?= 5
FREEZE_ROUNDS ?= 5

stress: ## kill -9 the broker CRASH_ROUNDS times under QoS 1/2 load, a cluster node in CLUSTER_ROUNDS rounds at random, restart a cluster node by node ROLL_ROUNDS times, freeze a cluster node FREEZE_ROUNDS times, and damage its data directory at random, checking nothing acknowledged is lost
	SHOAL_CRASH_ROUNDS=$(CRASH_ROUNDS) $(GO) test -count=1 -timeout 30m -v -run 'TestCrashKeepsAcknowledged' ./cmd/broker
	SHOAL_CLUSTER_ROUNDS=$(CLUSTER_ROUNDS) $(GO) test -count=1 -timeout 60m -v -run 'TestClusterKillRounds' ./cmd/broker
	SHOAL_CLUSTER_ROLL=1 $(GO) test -count=$(ROLL_ROUNDS) -timeout 30m -v -run 'TestClusterRollingRestart' ./cmd/broker
	SHOAL_CLUSTER_FREEZE=1 $(GO) test -count=$(FREEZE_ROUNDS) -timeout 30m -v -run 'TestClusterNodeFreeze' ./cmd/broker
	SHOAL_DAMAGE_ROUNDS=$$(( $(CRASH_ROUNDS) * 5 )) $(GO) test -count=1 -timeout 10m -run 'TestPebbleDamagedDirectory' ./store

# Runs every Fuzz target in each of $(FUZZ_PKGS) (what reads untrusted
# bytes or must agree with MQTT matching: MQTT packets, Mosquitto's
# persistence file, SCRAM exchanges and ACL patterns, MQTT topics as NATS
# subjects) for $(FUZZTIME) each; config's FuzzParse is left to a manual
# run (200,000 YAML inputs take over 10 minutes); go test takes
# one target per -fuzz run. make test gives a count (Nx), not a duration: Go
# 1.26's fuzz coordinator can fail a clean run with "context deadline
# exceeded" when a duration ends mid-input (golang/go#75804, fixed in 1.27).
# New crashers land in the package's testdata/fuzz and become regression
# tests: commit them with the fix.
fuzz: ## fuzz each fuzz target of the decoders and matchers for 60s
	@set -e; \
	for pkg in $(FUZZ_PKGS); do \
		if ! ls $$pkg/*_test.go >/dev/null 2>&1; then \
			echo "fuzz: no tests in $$pkg yet, skipping"; continue; \
		fi; \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "fuzz: cannot list $$pkg's tests"; exit 1; }; \
		targets=$$(printf '%s\n' "$$list" | grep '^Fuzz' || true); \
		if [ -z "$$targets" ]; then echo "fuzz: no Fuzz targets in $$pkg, skipping"; continue; fi; \
		for t in $$targets; do \
			echo "fuzz: $$pkg $$t for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Extra harness flags, e.g. make bench BENCH_ARGS='-scenarios p2p,idle -rounds 5'.
BENCH_ARGS ?=

bench: ## Shoal vs Mosquitto, mochi-mqtt and the floor, every scenario, and Shoal on one node vs three (cluster), 3 rounds (~20 min); reports in bench/results
	$(GO) run ./bench/cmd/harness $(BENCH_ARGS)

bench-quick: ## the same at small scale, 1 round (~2 min); reports named *-quick
	$(GO) run ./bench/cmd/harness -quick $(BENCH_ARGS)

profile: ## CPU and allocation profiles of the broker under load: make profile SCENARIO=fanout|p2p|p2p-qos1|p2p-rate|fanin
	bash bench/profile.sh $(or $(SCENARIO),fanout)

bench-pkg: ## package benchmarks (go test -bench), allocations included
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt must be clean, go vet must pass
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

BROWSER_TEST := admin/testdata/browser

deps: ## install mosquitto, its clients, python3-paho-mqtt, chromium and node (apt), and playwright-core, mqtt and uplot (npm), when missing
	@if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1 && \
		{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } && \
		/usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 && [ -x /usr/bin/chromium ] && \
		command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		echo "deps: mosquitto, mosquitto-clients, python3-paho-mqtt, chromium and node already installed"; \
	else \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto mosquitto-clients python3-paho-mqtt chromium && \
		{ command -v node >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs; } && \
		{ command -v npm >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y npm; } && \
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then \
			echo "deps: stopping the mosquitto service the package started, so port 1883 is free for shoal"; \
			$(SUDO) systemctl disable --now mosquitto; \
		fi; \
	fi
	@if [ ! -d $(BROWSER_TEST)/node_modules/playwright-core ] || [ ! -d $(BROWSER_TEST)/node_modules/mqtt ] || \
		[ ! -d $(BROWSER_TEST)/node_modules/uplot ]; then \
		echo "deps: npm ci in $(BROWSER_TEST)"; \
		cd $(BROWSER_TEST) && npm ci --no-audit --no-fund; \
	fi

UPLOT := $(BROWSER_TEST)/node_modules/uplot

# The dashboard's chart library is committed under admin/static/vendor (the
# binary embeds it); this copies it from the version package.json pins.
vendor-uplot: ## copy uPlot, at the version admin/testdata/browser/package.json pins, into admin/static/vendor/uplot
	cd $(BROWSER_TEST) && npm ci --no-audit --no-fund
	cp $(UPLOT)/dist/uPlot.iife.min.js $(UPLOT)/dist/uPlot.min.css $(UPLOT)/LICENSE admin/static/vendor/uplot/

clean: ## remove build output
	rm -rf bin build

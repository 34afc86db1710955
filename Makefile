# halfopen: `make test` runs every test; `make test-faults` runs the fault
# suites (the main job) and checks their reports' budgets. Both need root (network
# namespaces); nothing but Go, gcc and make is needed: Ginkgo comes through
# `go tool ginkgo`.

GO        ?= go
GINKGO    ?= $(GO) tool ginkgo
PROFILE   ?= quick
REPORTS   ?= reports
BIN       := bin/halfopen
SUITES    := ./suites/...
# Samples per cell: quick runs 3, full 10, soak 30 (a longer observation).
SAMPLES_quick := 3
SAMPLES_full  := 10
SAMPLES_soak  := 30
HALFOPEN_SAMPLES ?= $(SAMPLES_$(PROFILE))

# The real libraries gated with their real servers, each a module of its own
# in examples/gates/ (halfopen's module does not depend on them).
GATES     := grpc nats redis postgres example

.PHONY: all build examples chromium vet unit suites test test-faults test-scale gates gate-packages report screenshots clean gc bench bench-pool bench-phases bench-probe bench-lab fuzz fuzz-short

# Fuzz targets, package:function: every parser of outside input (specs,
# reports and their merge, budgets, protocol lines, HALFOPEN_CONFIG, gate
# files). `make fuzz` runs each for FUZZTIME; `make test` runs each for
# FUZZTIME_SHORT (fuzz-short).
# Minimising a new input is capped: on large reports it would stall the run.
FUZZ_TARGETS   := spec:FuzzParse spec:FuzzCanonical harness:FuzzNewDetector harness:FuzzNewFault \
                  protocol:FuzzParseEvent protocol:FuzzParseConfig report:FuzzParse report:FuzzMerge report:FuzzParseBudgets \
                  gatefile:FuzzParse
FUZZTIME       ?= 1m
FUZZTIME_SHORT ?= 3s

all: build

build: examples
	$(GO) build -o $(BIN) ./cmd/halfopen

examples:
	$(MAKE) -s -C examples/c

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	$(GO) vet ./...
	@for g in $(GATES); do (cd examples/gates/$$g && $(GO) vet ./...) || exit 1; done

# Headless Chromium (Debian's package) renders the HTML report in a test.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

unit: examples chromium
	$(GO) test -count=1 . ./spec/... ./tcprules/... ./internal/... ./harness/... ./faults/... ./detectors/... ./report/... ./capture/... ./protocol/... ./gate/... ./gatefile/... ./roles/... ./cmd/...

# The suites but the whole matrix (suites/matrix, Label("matrix")) and the
# 10 000-connection scale suite (Label("scale")), which `make test-faults`
# runs, to keep `make test` under 20 minutes. The probe's unloaded baseline
# (50 s) is measured once for all of them, as in test-faults.
suites: build
	@mkdir -p $(REPORTS)
	@test -n "$$HALFOPEN_BASELINE" || $(BIN) doctor --baseline $(BASELINE)
	HALFOPEN_BASELINE=$${HALFOPEN_BASELINE:-$(BASELINE)} PROFILE=$(PROFILE) HALFOPEN_SAMPLES=$(HALFOPEN_SAMPLES) $(GINKGO) -r --keep-going --timeout=30m --poll-progress-after=120s --label-filter='!matrix && !scale' $(SUITES)

# Every test: vet, a few seconds of each fuzz target, unit and lab tests,
# then the fault suites (quick profile).
test: vet fuzz-short unit suites
	@echo "make test: all tests passed"

# The main job: the fault suites (the whole matrix included) and the
# library gates, all at once, write their reports sample by sample into
# $(REPORTS)/, which are merged into faults.json, rendered, and checked against ci/budgets.yaml.
# First the latency probe's unloaded baseline is measured with nothing
# else running ($(BASELINE)); every process then sizes its own pool against
# it, and all of them see the one machine's probe error and CPU time, so
# together they hold the load where one pool would. The suites print as
# before; each gate writes $(REPORTS)/gate-<name>.log, and a failed gate's
# last lines are printed when it ends.
test-faults: build gate-packages
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/suite-*.json $(REPORTS)/gate-*.log $(BASELINE)
	$(BIN) doctor --baseline $(BASELINE)
	@export HALFOPEN_BASELINE=$(BASELINE); \
		$(START_GATES); \
		PROFILE=$(PROFILE) HALFOPEN_SAMPLES=$(HALFOPEN_SAMPLES) HALFOPEN_REPORT_DIR=$(abspath $(REPORTS)) \
			$(GINKGO) -r --keep-going --timeout=60m --poll-progress-after=120s -v $(SUITES); \
		status=$$?; \
		$(WAIT_GATES); \
		$(MAKE) -s report || exit 1; \
		exit $$status

# The scale suite alone (root, about 3.5 minutes on 2 cores): a passive
# server holding 100, 1 000 and 10 000 idle connections whose client host
# dies, per detector family and server design. Writes
# $(REPORTS)/suite-scale.json.
test-scale:
	@mkdir -p $(REPORTS)
	HALFOPEN_REPORT_DIR=$(abspath $(REPORTS)) $(GINKGO) -v --timeout=30m --poll-progress-after=300s ./suites/scale

# The real servers the gates run (redis-server, postgresql), installed from
# Debian's packages when missing.
gate-packages:
	@sh ci/install-gate-packages.sh

# Each library's gate suite, against its real server in the lab's peer
# host, all at once (see test-faults); each writes $(REPORTS)/gate-<name>.log.
gates: build gate-packages
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/gate-*.log
	@test -n "$$HALFOPEN_BASELINE" || $(BIN) doctor --baseline $(BASELINE)
	@export HALFOPEN_BASELINE=$${HALFOPEN_BASELINE:-$(BASELINE)}; status=0; $(START_GATES); $(WAIT_GATES); exit $$status

# The machine's unloaded probe baseline, measured once for a whole run.
BASELINE    = $(abspath $(REPORTS))/baseline.json
# START_GATES starts every gate in the background, its output in its log,
# and keeps "name:pid" of each in $$gates; WAIT_GATES waits for each, says
# how it ended, prints a failed one's last lines, and sets status=1 when
# one failed (it keeps status otherwise).
START_GATES = gates=""; for g in $(GATES); do \
		( cd examples/gates/$$g && HALFOPEN_REPORT_DIR=$(abspath $(REPORTS)) \
			$(GO) test -count=1 -timeout 20m ./... ) >$(REPORTS)/gate-$$g.log 2>&1 & \
		gates="$$gates $$g:$$!"; echo "gate $$g started: $(REPORTS)/gate-$$g.log"; \
	done
WAIT_GATES = for gp in $$gates; do \
		g=$${gp%%:*}; \
		if wait $${gp\#*:}; then echo "gate $$g: ok ($(REPORTS)/gate-$$g.log)"; \
		else status=1; echo "gate $$g: FAILED; the end of $(REPORTS)/gate-$$g.log:"; tail -n 40 $(REPORTS)/gate-$$g.log | sed "s/^/  gate $$g | /"; fi; \
	done

# Merge, render and check the budgets of whatever the suites wrote (also after a failed suite).
report:
	$(BIN) merge $(REPORTS)/suite-*.json -o $(REPORTS)/faults.json
	$(BIN) report $(REPORTS)/faults.json --format md -o $(REPORTS)/faults.md
	$(BIN) report $(REPORTS)/faults.json --format html -o $(REPORTS)/faults.html
	$(BIN) report $(REPORTS)/faults.json --format junit --budgets ci/budgets.yaml -o $(REPORTS)/faults.xml
	$(BIN) budgets check --budgets ci/budgets.yaml $(REPORTS)/faults.json

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn in ./$$pkg for $(FUZZTIME)"; \
		log=/tmp/halfopen-fuzz.$$$$.log; \
		if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./$$pkg/ >$$log 2>&1; then \
			if grep -q "context deadline exceeded" $$log && ! grep -q "Failing input written\|panic:\|_test.go:[0-9]*:" $$log; then \
				echo "  no failing input: the end of -fuzztime raced Go's fuzzing coordinator (golang/go#75804, fixed in go1.27); ignored"; \
			else cat $$log; rm -f $$log; exit 1; fi; \
		fi; \
		grep "execs:" $$log | tail -1; rm -f $$log; \
	done

fuzz-short:
	@$(MAKE) -s fuzz FUZZTIME=$(FUZZTIME_SHORT)

# The pool's benchmark, against the machine's baseline measured as
# test-faults measures it (halfopen doctor --baseline, before any lab): the
# same baseline in the test binary under `go test` measured a p99 of 1.1 to
# 3.2 ms on machine C where halfopen measured 0.34 ms minutes apart, and
# charged the load with less than nothing.
bench-pool: build
	@mkdir -p $(REPORTS)
	$(BIN) doctor --baseline $(BASELINE)
	HALFOPEN_BASELINE=$(BASELINE) $(GO) test -run '^$$' -bench Pool -benchtime 1x ./harness/

# What a sample costs besides its waiting, phase by phase (lab, session,
# warm-up, teardown: wall and CPU time), and the latency probe unloaded and
# loaded, idle CPUs polling and halting.
bench-phases:
	$(GO) test -run '^$$' -bench SamplePhases -benchtime 30x ./harness/

bench-probe:
	$(GO) test -run '^$$' -bench ProbeBaseline -benchtime 1x -timeout 20m ./harness/

# The README's screenshots, rendered by the browser test.
screenshots: chromium
	HALFOPEN_SCREENSHOTS=$(abspath docs/img) $(GO) test -count=1 -run TestHTMLInChromium ./report/

bench:
	$(GO) test -run '^$$' -bench 'LabUpDown|TimingError' -benchtime 200x ./harness/

# The lab against iproute2: both medians of building and removing the same
# 3-host lab, and their ratio.
bench-lab:
	$(GO) test -run '^$$' -bench Iproute2 -benchtime 30x ./harness/

gc: build
	$(BIN) gc

clean:
	rm -rf bin $(REPORTS)
	$(MAKE) -s -C examples/c clean

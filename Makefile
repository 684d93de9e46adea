# cohort — build, test and demo. `make demo` on a fresh machine installs what is missing.
SWIFT ?= swift
APT_PACKAGES = libedit-dev libsqlite3-dev zlib1g-dev pkg-config tmux jq curl
TEST_FLAGS ?=
# make install [PREFIX=/usr/local] [DESTDIR=…]: the release binary, bash/zsh/fish completion and the man page.
PREFIX ?= /usr/local
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
BASH_COMPLETION_DIR = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSH_COMPLETION_DIR = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISH_COMPLETION_DIR = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
# Release builds carry the version and git commit (Scripts/stamp-version.sh writes the generated file).
# SCRATCH: the build folder (the install test uses its own: a running `swift test` holds the lock on .build).
SCRATCH ?= .build
# Every import of a package target must be a declared dependency (the layering rules are in Tests/CohortShellTests/LayeringTests.swift).
IMPORT_CHECK = --explicit-target-dependency-import-check=error
RELEASE_FLAGS = -c release -Xswiftc -DCOHORT_STAMPED --scratch-path $(SCRATCH)

.PHONY: deps build release stamp test model run demo bench clean install uninstall man completion

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build $(IMPORT_CHECK)

stamp:
	@bash Scripts/stamp-version.sh

release: deps stamp
	$(SWIFT) build $(RELEASE_FLAGS)

install: release
	@bin=$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/cohort; \
	install -d "$(BINDIR)" "$(MANDIR)" "$(BASH_COMPLETION_DIR)" "$(ZSH_COMPLETION_DIR)" "$(FISH_COMPLETION_DIR)" && \
	install -m 755 "$$bin" "$(BINDIR)/cohort" && \
	"$$bin" --generate-completion-script bash > "$(BASH_COMPLETION_DIR)/cohort" && \
	"$$bin" --generate-completion-script zsh > "$(ZSH_COMPLETION_DIR)/_cohort" && \
	"$$bin" --generate-completion-script fish > "$(FISH_COMPLETION_DIR)/cohort.fish" && \
	"$$bin" help --man > "$(MANDIR)/cohort.1" && \
	echo "installed $(BINDIR)/cohort ($$("$(BINDIR)/cohort" --version)), its man page and bash/zsh/fish completion"

uninstall:
	rm -f "$(BINDIR)/cohort" "$(MANDIR)/cohort.1" "$(BASH_COMPLETION_DIR)/cohort" \
	  "$(ZSH_COMPLETION_DIR)/_cohort" "$(FISH_COMPLETION_DIR)/cohort.fish"

# The committed man page and completion scripts, regenerated from the command table (a test checks they match).
man: build
	.build/debug/cohort help --man > docs/cohort.1

completion: build
	.build/debug/cohort --generate-completion-script bash > Scripts/completion/cohort.bash
	.build/debug/cohort --generate-completion-script zsh > Scripts/completion/_cohort
	.build/debug/cohort --generate-completion-script fish > Scripts/completion/cohort.fish

# Swift Testing only: the last line is "Test run with N tests in M suites passed".
# Token lifetimes, polling and backoff run on an injected clock (a virtual TestClock in tests), so their suites run
# in the parallel phase. What still needs real time runs in a second, serial phase, so that the ~220 parallel tests
# cannot starve it on a 2-core machine: a terminal under tmux (TerminalTests), SIGKILLed children (CrashTests),
# lock holders in child processes (LockTests), `serve` processes (ServeProcessTests), and the real binary renewing
# 2 s tokens against an in-process server, which no shared clock can reach (SecretHygieneTests).
TIMED = TerminalTests|SecretHygieneTests|CrashTests|LockTests|ServeProcessTests
test: deps
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	$(SWIFT) test --skip-build --disable-xctest --skip '$(TIMED)' $(TEST_FLAGS)
	$(SWIFT) test --skip-build --disable-xctest --no-parallel --filter '$(TIMED)' $(TEST_FLAGS)

# The invariant's long run: thousands of random steps per server flavour, in episodes of 250 steps (a fresh server
# each; COHORT_MODEL_EPISODE=N changes it). Each episode prints the command that replays it alone
# (COHORT_MODEL_SEED=N COHORT_MODEL_FLAVOUR=standard|noDeleted|ignoresPatient COHORT_MODEL_STEPS=250).
MODEL_STEPS ?= 5000
model: deps
	$(SWIFT) build --build-tests
	COHORT_MODEL_STEPS=$(MODEL_STEPS) $(SWIFT) test --skip-build --disable-xctest --filter InvariantTests

run: build
	$(SWIFT) run cohort

demo: build
	cd Notebooks && ../.build/debug/cohort --workspace /tmp/cohort-demo-$$$$ --format table --echo run quickstart.cohort

# One table (docs/bench.md): curl, smart-fetch if installed, cohort at 10 k patients, a 100 k scale row
# (BENCH_SCALE=0 skips it) and `view run` over 80 k patients (BENCH_VIEWS=0 skips it);
# PATIENTS, PATIENTS_SCALE, PATIENTS_VIEWS, PARALLEL, TYPES override. Then the store alone at 1 M resources
# (store-bench: a full commit, a full re-export commit with 1 % changed, incrementals of 1 %; BENCH_STORE=0 skips it).
BENCH_STORE ?= 1
bench: release
	bash Scripts/bench.sh
	if [ "$(BENCH_STORE)" != 0 ]; then $(SWIFT) build -c release --product store-bench && .build/release/store-bench; fi

clean:
	rm -rf .build

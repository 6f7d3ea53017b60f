# Two commands for a newcomer: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo demo-down test lint labelstudio clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,local]'
	$(BIN)/pip install -q --no-deps 'irrCAC==0.4.4'  # test reference for AC1; why --no-deps: see pyproject.toml
	touch $(STAMP)

install: $(STAMP)

# Label Studio in its own venv (it pins its own SDK and openai); nothing to do once installed.
labelstudio: install
	@$(BIN)/python -c 'from annotator.labelstudio import server; server.ensure_installed()'

# Headless Chromium for the test that looks at a Label Studio task as an annotator sees it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The whole loop on the bundled samples, simulated reviewers included, so every stage leaves its
# file; Label Studio is installed into its own venv on first use. Run again to resume.
# To review by hand instead, run the command it prints at the end (no --simulate-review).
demo: install labelstudio
	$(BIN)/annotator demo --simulate-review

# Stop what the demo started: its Label Studio and a model server a killed run left behind.
demo-down:
	@if [ -x $(BIN)/annotator ]; then $(BIN)/annotator demo --down; else echo "nothing to stop (no $(VENV))"; fi

lint: install
	$(BIN)/ruff check .

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

clean: demo-down
	rm -rf $(VENV) .annotator .pytest_cache .ruff_cache

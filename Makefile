# Two commands for a newcomer: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test lint labelstudio clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,local]'
	$(BIN)/pip install -q --no-deps 'irrCAC==0.4.4'  # test reference for AC1; why --no-deps: see pyproject.toml
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the test that looks at a Label Studio task as an annotator sees it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(BIN)/annotator demo

lint: install
	$(BIN)/ruff check .

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) .annotator .pytest_cache .ruff_cache

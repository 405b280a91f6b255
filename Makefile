# The README's two commands: `make demo` and `make test`. Both create or reuse
# .venv and install the project with its extras before running.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ARCH    := $(shell uname -m)
DEMO    ?= demo

.PHONY: demo test test-fast bench lint install clean-demo

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: on x86_64 Linux these two wheels come from local files; timm needs torchvision.
$(STAMP): pyproject.toml | $(BIN)/python
ifeq ($(ARCH),x86_64)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
endif
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# tmux drives the end-to-end TUI test; install it when missing (root on CI).
tmux:
	@command -v tmux >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "warning: tmux not installed; the tmux end-to-end test will be skipped"; }

test: $(STAMP) tmux
	$(BIN)/python -m pytest -p no:cacheprovider


test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

demo: $(STAMP)
	$(BIN)/python -m tui.demo --dir $(DEMO)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

lint: $(STAMP)


clean-demo:
	rm -rf $(DEMO)

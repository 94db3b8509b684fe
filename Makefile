# The two commands of the README: `make book` and `make test`. Both set up .venv first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# CPU PyTorch first: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH   ?= torch==2.13.0
# Where torch comes from: PyTorch's CPU wheel index when no NVIDIA GPU is visible (no
# nvidia-smi), the configured index otherwise. When that index cannot be reached (an
# offline mirror), the configured index is tried next. Override: `make TORCH_INDEX=URL`,
# or `make TORCH_INDEX=` for the configured index only.
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
# The floor is pyproject's (triton>=3.7); the cap keeps the release torch 2.13 was built with.
TRITON  ?= triton>=3.7,<3.8
PYTEST  := $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: install lab book test verify test-unit test-notebooks test-notebook test-book clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q "$(TORCH)" \
	    --index-url "$(TORCH_INDEX)" --retries 1 --timeout 30 || \
	  echo "torch: $(TORCH_INDEX) not reachable; using the configured index")
	$(BIN)/python -m pip install -q "$(TORCH)" "$(TRITON)"
	$(BIN)/python -m pip install -q -r requirements.txt  # = -e .[docs,test]
	touch $(STAMP)

# The chapters in JupyterLab on this machine (the lab extra adds JupyterLab to .venv).
lab: install
	$(BIN)/python -m pip install -q -e ".[lab]"
	$(BIN)/jupyter lab book

# The rendered book in _build/html, every notebook executed (cached between builds).
book: install
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	$(BIN)/python -m phaselib.book timings   # each chapter's seconds, slowest first

# Everything: the stored results still reproduce (one cell of every sweep, re-run at
# HEAD, but for sweeps whose cheapest cell took over two minutes: `make verify` runs
# those too), then unit tests, every notebook under nbval, the book build and its pages.
test: install
	$(BIN)/python -m phaselib.sweep verify all --cells 1 --max-seconds 120
	$(PYTEST) tests/unit book tests/book --nbval-lax --nbval-current-env

# Re-run the cheapest cell of every sweep and compare it with book/*/results (no time
# budget: the cheapest cell of some sweeps takes over ten minutes).
verify: install
	$(BIN)/python -m phaselib.sweep verify all --cells 1

test-unit: install
	$(PYTEST) tests/unit

test-notebooks: install
	$(PYTEST) book --nbval-lax --nbval-current-env

test-notebook: install
	$(PYTEST) $(NB) --nbval-lax --nbval-current-env

test-book: install
	$(PYTEST) tests/book

clean:
	rm -rf _build

# The two commands of the README (CONTRIBUTING.md says more):
#   make book   set up (Python packages in .venv, Fashion-MNIST), then build the HTML book,
#               executing every chapter
#   make test   the same set-up, then the whole test suite (which also builds the book)
# Both are idempotent: the set-up is redone only when requirements.txt or
# pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR_STAMP := vendor/node_modules/.installed
# apt-get waits (up to 10 minutes) for another apt-get or dpkg to finish, instead of failing
APT    := apt-get -o DPkg::Lock::Timeout=600

export PATH := $(BIN):$(PATH)

.PHONY: book test runs bench gpu-check setup data browser learner clean clean-cache

book: setup data
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

test: setup data browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup

setup: $(STAMP) $(VENDOR_STAMP)

$(STAMP): requirements.txt pyproject.toml devtools/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . -e ./devtools
	touch $(STAMP)

# The book's JavaScript (MathJax, plotly.js), pinned in vendor/package-lock.json, served
# from the book's own site (_ext/offline.py copies it into _build/html/_static/lib).
$(VENDOR_STAMP): vendor/package.json vendor/package-lock.json
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  $(APT) update -qq && $(APT) install -y -qq nodejs npm; \
	fi
	@command -v npm >/dev/null || { echo "npm is needed for the book's JavaScript: install Node.js"; exit 1; }
	npm ci --prefix vendor --no-audit --no-fund --loglevel=error
	touch $@

# Chromium for the browser test (tests/test_browser.py): Debian's package.
browser:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  $(APT) update -qq && $(APT) install -y -qq chromium; \
	fi
	@command -v chromium >/dev/null || echo "warning: no chromium; tests/test_browser.py will fail (apt-get install chromium)"

# Fashion-MNIST: Debian's package where we may install it, else torchvision's download.
data: setup
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  ($(APT) update -qq && $(APT) install -y -qq dataset-fashion-mnist) \
	    || echo "apt-get could not install dataset-fashion-mnist; trying a download"; \
	fi
	$(BIN)/python -c 'from deepres.data import ensure_fashion_mnist; ensure_fashion_mnist()'

# The book's runs, retrained and committed: a build with an empty run cache (laptop budget,
# one thread a run) trains every run the book shows, and runs/ then holds exactly those
# (deepres/course/book_runs.py). Run it after bumping NUMERICS_VERSION, then `make learner`.
RUNS_CACHE := $(CURDIR)/_build/runs-cache
runs: setup data
	rm -rf $(RUNS_CACHE)
	DEEPRES_CACHE=$(RUNS_CACHE) DEEPRES_STORE= DEEPRES_BUDGET=laptop \
	  $(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python -m deepres.course.book_runs $(RUNS_CACHE) runs

# The training loop against a raw PyTorch loop, and thread counts on an idle and a busy
# machine: figures printed (and kept in _build/reports/bench.json), nothing asserted.
bench: setup data
	$(BIN)/python -m devtools.bench --json _build/reports/bench.json

# On a CUDA GPU (at most about 8 minutes, no network): every chapter's gpu-budget network,
# the host waits of a step, chapter 2's measurements, the command line, a resumed run,
# DDP; report in _build/reports/gpu-check.{json,md}. The tests run its --dry mode on the CPU.
gpu-check: setup
	$(BIN)/python -m devtools.gpu_check --out _build/reports

learner: setup
	$(BIN)/python -m devtools.learner

# The run cache is one folder for the whole machine (~/.cache/deepres/runs, or
# $$DEEPRES_CACHE): every clone and every notebook shares it.
clean-cache: setup
	$(BIN)/python -c 'from deepres import clear_cache; from deepres.training import cache_dir; print(clear_cache(), "files removed from", cache_dir())'

clean:
	rm -rf _build

# The two commands of the README:
#   make book   set up (Python packages in .venv, Fashion-MNIST), then build the HTML book,
#               executing every chapter
#   make test   the same set-up, then the whole test suite (which also builds the book)
# Both are idempotent: the set-up is redone only when requirements.txt or
# pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export DEEPRES_CACHE ?= $(CURDIR)/_build/runcache

.PHONY: book test setup data learner clean clean-cache

book: setup data
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

test: setup data
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Fashion-MNIST: Debian's package where we may install it, else torchvision's download.
data: setup
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
	    || echo "apt-get could not install dataset-fashion-mnist; trying a download"; \
	fi
	$(BIN)/python -c 'from deepres.data import ensure_fashion_mnist; ensure_fashion_mnist()'

learner: setup
	$(BIN)/python tools/learner.py

clean-cache:
	rm -rf _build/runcache

clean:
	rm -rf _build

# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run console test lint bench locales clean system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)  ## install, then run every front-end with a token (the console when none)
	$(BIN)/coalition-bot run

console: $(STAMP)
	$(BIN)/coalition-bot console

# Debian packages the tests use, installed when absent: PostgreSQL's server (the tests
# start a throwaway one as an unprivileged user; tests/postgres_server.py), and Chromium with
# the Noto fonts (Arabic included), which tests/test_web_browser.py drives through Playwright.
system-packages:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || \
		{ $(SUDO) apt-get update -q && \
		  $(SUDO) apt-get install -y -q --no-install-recommends postgresql; }
	@[ -x /usr/bin/chromium ] && dpkg -s fonts-noto-core >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q && \
		  $(SUDO) apt-get install -y -q --no-install-recommends chromium fonts-noto-core; }

test: $(STAMP) system-packages  ## install, then lint and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/core.py

locales: $(STAMP)  ## re-extract messages.pot and merge it into every catalog
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 -k P_:1c,2 --no-location \
		--sort-output --omit-header -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching \
		--ignore-obsolete

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

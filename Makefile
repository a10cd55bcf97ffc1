# Cloud Branch: developer and CI entry points.  `make` alone lists the targets.
#
# Everything a target needs is set up on the way: the virtualenv (.venv), the
# project in editable mode (`make run` installs only what running needs; test,
# lint and bench add the dev extras), and, for `make test`, Debian's
# redis-server and postgresql packages when their binaries are missing.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
RUNTIME_INSTALLED := $(VENV)/.installed-runtime

# Extra arguments for pytest, e.g.  make test PYTEST_ARGS="-k queue -x"
PYTEST_ARGS ?=

# Where `make run` listens.
HOST ?= 127.0.0.1
PORT ?= 8080

# The browser tests (tests/browser/) drive Debian's chromium through Playwright;
# `make test` installs it from apt when the binary of that name is missing.
BROWSER_PACKAGES := chromium
# A CJK font, so that the pages' screenshots (build/screenshots/) show Chinese text,
# and that certificates and statements (PDF, server/banking/statement.py) embed one.
BROWSER_FONT_PACKAGES := fonts-wqy-microhei

# apt-get as root (sudo otherwise); waits for a dpkg lock held by another apt run.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300
POLICY_RC_D := /usr/sbin/policy-rc.d

LINT_PATHS := $(wildcard server signaling risk tests bench)
TYPED_PATHS := $(wildcard server signaling risk)

.PHONY: help venv install run test lint bench clean distclean system-deps

help: ## Show this help
	@echo "Cloud Branch make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: PYTEST_ARGS=\"...\" (make test), HOST/PORT (make run), PYTHON (venv interpreter)"

# --------------------------------------------------------------------------- setup

$(VPY):
	@echo "Creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "'$(PYTHON) -m venv' failed; installing Debian's python3-venv and retrying" >&2; \
	  rm -rf $(VENV); \
	  $(APT_GET) update && $(APT_GET) install -y python3-venv; \
	  $(PYTHON) -m venv $(VENV); }

# Reinstalled only when pyproject.toml is newer than the stamp. Two stamps: what
# running needs (`make run`), and that plus the test and lint tools. The full
# install includes the runtime one, so it refreshes both stamps.
$(RUNTIME_INSTALLED): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -e .
	@touch $@

$(INSTALLED): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@ $(RUNTIME_INSTALLED)

venv: $(VPY) ## Create the virtualenv only

install: $(INSTALLED) ## Create the virtualenv and install the project with its dev extras

# The deploy tests run Debian's real nginx and coturn (turnserver); both live in
# /usr/sbin or /usr/bin, which a non-root PATH may lack, so look there too.
DEPLOY_DEPS_CHECK = { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 || missing="$$missing nginx"; \
	{ command -v turnserver || test -x /usr/bin/turnserver; } >/dev/null 2>&1 || missing="$$missing coturn";

# The Janus media backend's tests start Debian's janus (1.1.2, NoSIP plugin) privately.
MEDIA_DEPS_CHECK = { command -v janus || test -x /usr/bin/janus; } >/dev/null 2>&1 || missing="$$missing janus";

# Test servers come from Debian packages; each is installed only when its
# binaries are missing. Services are kept from starting during the install
# (policy-rc.d), so no system-wide Redis or PostgreSQL is left running: the
# tests start private instances of their own.
system-deps: ## Install redis-server, postgresql, nginx and coturn with apt if missing
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	have_pg=""; \
	for bindir in /usr/lib/postgresql/*/bin; do \
	  if [ -x "$$bindir/initdb" ] && [ -x "$$bindir/pg_ctl" ]; then have_pg=1; fi; \
	done; \
	[ -n "$$have_pg" ] || missing="$$missing postgresql"; \
	$(DEPLOY_DEPS_CHECK) \
	$(MEDIA_DEPS_CHECK) \
	for pkg in $(BROWSER_PACKAGES); do \
	  command -v "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	for pkg in $(BROWSER_FONT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "Installing from apt:$$missing"; \
	if [ ! -e $(POLICY_RC_D) ]; then \
	  trap '$(SUDO) rm -f $(POLICY_RC_D)' EXIT; \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $(POLICY_RC_D) >/dev/null; \
	  $(SUDO) chmod 755 $(POLICY_RC_D); \
	fi; \
	$(APT_GET) update; \
	$(APT_GET) install -y $$missing

# --------------------------------------------------------------------------- targets

run: export CLOUDBRANCH_DEV_MODE := 1
run: $(RUNTIME_INSTALLED) ## Migrate, seed and serve on 127.0.0.1:8080 (dev mode, SQLite under var/)
	@mkdir -p var
	$(VENV)/bin/cloudbranch migrate
	$(VENV)/bin/cloudbranch seed
	$(VENV)/bin/cloudbranch serve --host $(HOST) --port $(PORT)

# pytest runs under tests/services.py, which starts throwaway Redis and
# PostgreSQL servers on free ports, exports their URLs, and stops them
# afterwards whatever the outcome, keeping pytest's exit code. Exit code 5
# (no tests collected) counts as a failure.
#
# By default the suite runs as shards side by side (tests/shards.py), each with
# servers of its own: TEST_SHARDS lists the paths that get a shard of their own,
# separated by |, and one more shard runs everything else. Most of the suite
# waits on sockets and timers, so shards cut the wall time on two cores.
# TEST_JOBS=1 runs one pytest process instead (use it when PYTEST_ARGS names paths).
# The 5-minute false-alarm call (mostly waiting) has a shard of its own, so that it
# runs beside the others rather than after a shard's other tests.
TEST_SHARDS ?= tests/api|tests/faults tests/browser tests/deploy tests/docs tests/recording|tests/integrity/test_false_alarm.py
TEST_JOBS ?= 2
test: $(INSTALLED) system-deps ## Run the whole test suite against throwaway Redis and PostgreSQL
	@rc=0; \
	if [ "$(TEST_JOBS)" = 1 ]; then \
	  $(VPY) tests/services.py -- $(VPY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	else \
	  IFS='|' read -ra shards <<< "$(TEST_SHARDS)"; shard_args=(); \
	  for s in "$${shards[@]}"; do shard_args+=(--shard "$$s"); done; \
	  $(VPY) tests/shards.py "$${shard_args[@]}" -- $(PYTEST_ARGS) || rc=$$?; \
	fi; \
	if [ "$$rc" -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: $(INSTALLED) ## ruff on all code, mypy (strict) on the packages, the import contracts
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPED_PATHS)
	$(VENV)/bin/lint-imports --no-logo  # the contracts in pyproject.toml ([tool.importlinter])

bench: $(INSTALLED) ## Run every bench/*.py script to the end; fails at the end if one missed a target
	@shopt -s nullglob; export LC_ALL=C; ran=0; missed=""; \
	for script in bench/*.py; do \
	  case "$${script##*/}" in _*) continue ;; esac; \
	  echo "== $$script"; \
	  $(VPY) "$$script" || missed="$$missed $$script"; \
	  ran=$$((ran + 1)); \
	done; \
	if [ "$$ran" -eq 0 ]; then echo "No bench/*.py scripts yet."; fi; \
	if [ -n "$$missed" ]; then echo "== bench: missed a target (or failed):$$missed"; exit 1; fi; \
	echo "== bench: every target met ($$ran scripts)"

clean: ## Remove caches and build output (keeps .venv and var/)
	rm -rf build dist ./*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## Also remove .venv and var/ (the development database)
	rm -rf $(VENV) var

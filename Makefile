# userstream: local mode (real services as plain processes) and tests.
#   make up                 install what is missing, start every service, apply schemas, unpause
#                           the DAGs and wait for the first users to land in Cassandra
#   make up SOURCE=local    the same, with the bundled randomuser-compatible API as the source
#   make up PAUSED=true     the same, but the DAGs are left paused
#   make up TOPOLOGY=cluster  3 Kafka brokers, 3 Cassandra nodes, Spark standalone, Celery workers
#   make test               up, then the whole test suite against the running stack, then the
#                           node-failure suite on the cluster topology (make test-cluster)
#   make stop-stream        pause the stream DAG and stop its long-lived Spark query
#   make status | down | clean | lint
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
UV := $(PYTHON) -m uv
VENV_PY := .venv/bin/python
ifdef SOURCE
export USERSTREAM_SOURCE := $(SOURCE)
endif
ifdef TOPOLOGY
export USERSTREAM_TOPOLOGY := $(TOPOLOGY)
endif
ifdef PAUSED
export USERSTREAM_START_PAUSED := $(PAUSED)
endif

.PHONY: up down stop-stream status clean compose-env compose-up test test-cluster test-unit lint venv lock

venv: .venv/.synced

# With bytecode compiled at install: every Airflow task and DAG parse is a fresh Python process,
# and without it each one compiles its imports from source (Airflow's task runner alone: 4.1 s
# instead of 1.7 s) wherever PYTHONDONTWRITEBYTECODE is set.
.venv/.synced: requirements/dev.lock Makefile
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q "uv==$(UV_VERSION)"
	@test -x $(VENV_PY) || UV_PYTHON_DOWNLOADS=never $(UV) venv -q --python $(PYTHON) .venv
	$(UV) pip sync -q --compile-bytecode --python $(VENV_PY) --require-hashes requirements/dev.lock
	@touch $@

# Re-resolves pyproject.toml into the hash-pinned lock files. uv.lock itself stays uncommitted
# because it records download addresses; the exported files record only names, versions, hashes.
lock:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q "uv==$(UV_VERSION)"
	UV_PYTHON_DOWNLOADS=never $(UV) lock --python $(PYTHON)
	$(UV) export -q --frozen --no-header --no-emit-project --format requirements.txt \
		-o requirements/dev.lock
	$(UV) export -q --frozen --no-header --no-emit-project --format requirements.txt --no-dev \
		-o requirements/runtime.lock

up: venv
	$(VENV_PY) -m local_stack up

down: venv
	$(VENV_PY) -m local_stack down

stop-stream: venv
	$(VENV_PY) -m local_stack stop-stream

status: venv
	$(VENV_PY) -m local_stack status

clean: venv
	$(VENV_PY) -m local_stack clean

# docker compose with generated secrets (.local/compose.env) and the settings in .env.
compose-env: venv
	$(VENV_PY) -m local_stack compose-env

# TOPOLOGY=cluster adds the `cluster` profile and its settings (compose/cluster.env).
compose-up: compose-env
	test -f .env || cp .env.example .env
	docker compose --env-file .env --env-file .local/compose.env \
		$(if $(filter cluster,$(TOPOLOGY)),--env-file compose/cluster.env --profile cluster) up -d

# Tests run offline: the bundled randomuser-compatible API is the source. The whole suite on the
# single topology, then the node-failure suite on the cluster topology (the two share ports, so
# the first is stopped).
test:
	$(MAKE) up SOURCE=local
	USERSTREAM_SOURCE=local $(VENV_PY) -m pytest
	$(MAKE) test-cluster

test-cluster: venv
	$(VENV_PY) -m local_stack down
	$(MAKE) up SOURCE=local TOPOLOGY=cluster PAUSED=true
	USERSTREAM_SOURCE=local USERSTREAM_TOPOLOGY=cluster $(VENV_PY) -m pytest tests/cluster

test-unit: venv
	$(VENV_PY) -m pytest tests/unit tests/dags

lint: venv
	$(VENV_PY) -m ruff check .

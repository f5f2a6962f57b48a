# Two commands matter: `make run` (no services needed) and `make test` (PostgreSQL + Redis).
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup run test test-fast lint typecheck check services migrate clean e2e-deps screenshots bench fuzz soak deploy

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

# The portal on http://127.0.0.1:8000 with SQLite, a local-memory cache, eager Celery and console email,
# and beside it the demo relying party (examples/relying_party) as "Mortgage app" on :8001 and
# "Reporting tool" on :8002; both stop with the portal (Ctrl-C).
RP_DIR := examples/relying_party
run: setup
	DJANGO_SETTINGS_MODULE=config.settings.dev $(PY) manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=config.settings.dev $(PY) manage.py seed_demo
	set -o pipefail; DJANGO_SETTINGS_MODULE=config.settings.dev $(PY) manage.py seed_demo_oauth | $(PY) examples/demo_env.py
	RP_ENV_FILE=$(RP_DIR)/.env.mortgage-app $(PY) $(RP_DIR)/manage.py migrate --noinput -v 0
	RP_ENV_FILE=$(RP_DIR)/.env.reporting-tool $(PY) $(RP_DIR)/manage.py migrate --noinput -v 0
	trap 'kill $$mortgage $$reporting 2>/dev/null; wait' EXIT INT TERM; \
	RP_ENV_FILE=$(RP_DIR)/.env.mortgage-app $(PY) $(RP_DIR)/manage.py runserver 127.0.0.1:8001 --noreload & mortgage=$$!; \
	RP_ENV_FILE=$(RP_DIR)/.env.reporting-tool $(PY) $(RP_DIR)/manage.py runserver 127.0.0.1:8002 --noreload & reporting=$$!; \
	DJANGO_SETTINGS_MODULE=config.settings.dev $(PY) manage.py runserver 127.0.0.1:8000

# PostgreSQL and Redis on localhost (what docker-compose.yml provides); started here when down.
services:
	@bash scripts/ensure-services.sh

# The whole suite against real PostgreSQL and Redis, on PYTEST_WORKERS pytest-xdist workers (0: one
# process); each worker has its own test database and Redis database (config/settings/test.py).
PYTEST_WORKERS ?= 2
test: setup services e2e-deps
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Debian's Chromium for the browser journeys in tests/e2e (installed with apt-get when missing).
e2e-deps:
	@bash scripts/ensure-chromium.sh

# The browser journeys alone, refreshing the README's pictures in docs/screenshots/.
screenshots: setup services e2e-deps
	E2E_SCREENSHOTS=1 DJANGO_SETTINGS_MODULE=config.settings.test $(PY) -m pytest tests/e2e -m e2e $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	DJANGO_SETTINGS_MODULE=config.settings.test $(VENV)/bin/mypy .
	cd examples/relying_party && ../../$(VENV)/bin/mypy .

check: lint typecheck test

# Load test of a production-like stack on 127.0.0.1 (gunicorn, Celery, PostgreSQL, Redis): see bench/README.md.
bench: setup services
	bash bench/run.sh

# The production profile of docker-compose.yml (README "Deploy"): secrets in ./secrets (created when
# missing, never replaced), then Caddy on :80/:443, two web replicas, worker, beat, PostgreSQL, Redis.
deploy:
	sh deploy/make-secrets.sh secrets
	docker compose --profile prod up -d --build

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache staticfiles dev.sqlite3

# Schemathesis against the OpenAPI schema with many more examples than the suite's bounded run.
fuzz: setup services
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} DJANGO_SETTINGS_MODULE=config.settings.test $(PY) -m pytest tests/security/test_fuzz_api.py -p no:randomly

# A bounded soak of mixed traffic (SOAK_SECONDS, default 300) against bench/'s production-like stack on
# 127.0.0.1, ending with invariant checks (audit rows = actions, no outbox message lost, ledger consistent,
# no 5xx); writes docs/security/soak.md. See soak/run.py.
soak: setup services
	$(PY) soak/run.py

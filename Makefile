# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SDK_INSTALLED := tests/node_modules/.package-lock.json

.PHONY: install run serve test lint format migrate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

.env:
	cp .env.example .env

migrate: install .env
	$(BIN)/python manage.py migrate --noinput

## Set up, migrate, load demo data and serve on http://127.0.0.1:8000 (SQLite by default),
## with a Celery worker and its beat delivering change events (no broker server needed).
## Ctrl-C stops both.
run: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/celery -A consentsite worker --beat --pool threads --concurrency 4 --loglevel INFO & \
	trap 'kill $$! 2>/dev/null; wait $$! 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## Serve in production: gunicorn with gunicorn.conf.py, on BIND (default 127.0.0.1:8000) with
## WEB_CONCURRENCY worker processes (default 2). Migrate and collect static files first.
serve: install
	exec $(BIN)/gunicorn -c gunicorn.conf.py

# The source platform's JS SDK, a client in the consent API's SDK test (versions in tests/).
$(SDK_INSTALLED): tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund --loglevel=error

## Set up and run the whole test suite (DATABASE_URL picks the database; SQLite by default).
## Without Node.js the consent API's SDK test is skipped (CI requires it).
test: install
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s --no-print-directory $(SDK_INSTALLED); \
	else echo "Node.js (npm) not found: the consent API's SDK test will be skipped."; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

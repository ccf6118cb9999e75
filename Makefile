# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint format migrate

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

## Set up and run the whole test suite (DATABASE_URL picks the database; SQLite by default).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from consents.models import ClientApiKey
from tests.factories import ClientApiKeyFactory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` need PostgreSQL; CI runs the suite on it too."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def api_key(db) -> ClientApiKey:
    """An API key named `crm-sync`; its clear text is `api_key.clear_key`."""
    return ClientApiKeyFactory(name="crm-sync")


@pytest.fixture
def api_client(api_key: ClientApiKey) -> APIClient:
    """A client that authenticates with a valid API key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.clear_key}")
    return client


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class CommandOutput:
    stdout: str
    stderr: str


@pytest.fixture
def run_command() -> Callable[..., CommandOutput]:
    """Run a management command with command-line arguments; return what it printed."""

    def run(*args: str) -> CommandOutput:
        stdout, stderr = StringIO(), StringIO()
        call_command(*args, stdout=stdout, stderr=stderr)
        return CommandOutput(stdout.getvalue(), stderr.getvalue())

    return run

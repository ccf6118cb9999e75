import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def webhook_settings(settings):
    """Local receivers allowed, and short retries."""
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0.05, 0.1, 0.1]
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    return settings

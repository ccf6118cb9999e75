"""The Celery app: `celery -A consentsite worker --beat` delivers change events (webhooks).

Its settings are the Django settings starting with CELERY_ (see consentsite/settings.py)."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# `filesystem://` is kombu's filesystem transport with atomic writes (see consentsite/broker.py).
TRANSPORT_ALIASES["filesystem"] = "consentsite.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentsite.settings")

app = Celery("consentsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["consents.webhooks", "consents.revocations"])

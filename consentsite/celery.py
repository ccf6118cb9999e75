"""The Celery app: `celery -A consentsite worker --beat` delivers change events (webhooks).

Its settings are the Django settings starting with CELERY_ (see consentsite/settings.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentsite.settings")

app = Celery("consentsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["consents.webhooks"])

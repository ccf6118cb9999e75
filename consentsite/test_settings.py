"""Settings for the test suite: the real settings with a throwaway key and a fast hasher."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-for-the-consentsite-suite-x9f2Lq")
os.environ.setdefault("ERASURE_HASH_KEY", "test-only-erasure-key-for-the-consentsite-suite-p4Wz8n")
# Without CELERY_BROKER_URL, tasks queued by the tests (and read by the workers some tests start)
# go through a filesystem broker of this run only.
os.environ.setdefault(
    "CELERY_FILESYSTEM_BROKER_DIR", tempfile.mkdtemp(prefix="consentsite-broker-")
)

from consentsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests see a revoked key refused at once; the tests of the key cache switch it on.
API_KEY_CACHE_SECONDS = 0
# Whatever a developer's .env says (`make run` sets it): the tests that need local webhook
# receivers allow them themselves.
WEBHOOK_ALLOW_INSECURE_TARGETS = False

"""WSGI entry point (gunicorn consentsite.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentsite.settings")

application = get_wsgi_application()

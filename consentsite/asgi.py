"""ASGI entry point (production serves WSGI: `make serve`).

Under ASGI every request runs in a context of its own, with connections of its own: a database
connection kept for reuse (CONN_MAX_AGE > 0) would never be reused, only left open, one more per
request, until PostgreSQL refuses connections. Here each request's connection is closed when it
ends, whatever CONN_MAX_AGE says.
"""

import os

from django.core.asgi import get_asgi_application
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentsite.settings")

application = get_asgi_application()
for alias in connections:
    connections.settings[alias]["CONN_MAX_AGE"] = 0

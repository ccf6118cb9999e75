"""`runserver` with the header and Content-Type rules of consentsite/servers.py, so that the
development server hands the application what gunicorn does in production."""

from whitenoise.runserver_nostatic.management.commands.runserver import (
    Command as StaticlessRunserverCommand,
)

from consentsite.servers import WSGIServer


class Command(StaticlessRunserverCommand):
    server_cls = WSGIServer

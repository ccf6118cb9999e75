"""Create a webhook endpoint and print its signing secret (shown once)."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consents.models import ConsentType
from consents.webhooks.delivery import create_endpoint
from consents.webhooks.models import EventType
from consents.webhooks.targets import UnsafeTarget


class Command(BaseCommand):
    help = (
        "Create a webhook endpoint for URL. Its signing secret is printed alone on the last "
        "line of stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument(
            "--events",
            nargs="+",
            choices=EventType.values,
            default=EventType.values,
            help="Event types to deliver (default: all).",
        )
        parser.add_argument("--type", choices=ConsentType.values, default="", dest="consent_type")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--since",
            type=datetime.fromisoformat,
            help="Replay every event recorded since this ISO-8601 time (default: from now).",
        )

    def handle(self, *args: object, **options: object) -> None:
        since = options["since"]
        if since is not None and since.tzinfo is None:
            raise CommandError("--since needs a time zone, e.g. 2026-01-01T00:00:00+00:00.")
        try:
            endpoint = create_endpoint(
                url=options["url"],
                event_types=options["events"],
                consent_type=options["consent_type"],
                description=options["description"],
                since=since,
            )
        except (UnsafeTarget, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 1:
            self.stderr.write(f"Created webhook endpoint {endpoint.id} for {endpoint.url}.")
        self.stdout.write(endpoint.secret)

"""Create an API key for a client system and print it (only once: it is stored hashed)."""

from django.core.management.base import BaseCommand, CommandParser

from consents.models import ApiName, ApiScope, ClientApiKey


class Command(BaseCommand):
    help = (
        "Create an API key named NAME. The key is printed alone on the last line of stdout; it "
        "is stored hashed and cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who uses the key; recorded as the actor of its writes.")
        parser.add_argument("--scope", choices=ApiScope.values, default=ApiScope.MANAGE)
        parser.add_argument("--api", choices=ApiName.values, default=ApiName.ANY)

    def handle(self, *args: object, name: str, scope: str, api: str, **options: object) -> None:
        _, key = ClientApiKey.objects.create_key(name=name, scope=scope, api=api)
        if options["verbosity"] >= 1:
            self.stderr.write(f"Created API key {name!r} (scope {scope}, api {api}).")
        self.stdout.write(key)

"""manage.py export_person: everything held about a person, as one JSON document."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from consents.privacy.export import subject_access_export
from consents.privacy.iso27560 import consent_records
from consents.privacy.management.person_options import add_person_options, person_from


class Command(BaseCommand):
    help = (
        "Write everything held about a person (member records, the consents of their "
        "addresses, every proof event, newest first) as one JSON document on stdout. With "
        "--format iso27560, each consent as an ISO/IEC TS 27560 consent record instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_person_options(parser)
        parser.add_argument("--format", choices=["json", "iso27560"], default="json")

    def handle(self, *args: object, **options: Any) -> None:
        person = person_from(options)
        if options["format"] == "iso27560":
            document: Any = consent_records(person)
        else:
            document = subject_access_export(person)
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))

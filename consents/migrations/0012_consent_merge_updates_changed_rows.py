"""`consent_merge` compares each consent with the row it locked before updating it, so that only
the consents that change are looked up again (consents/ledger/postgres.py)."""

from django.db import migrations

from consents.ledger.postgres import install_merge_function_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("consents", "0011_consent_merge_claims_addresses"),
    ]

    operations = [
        migrations.RunPython(install_merge_function_in_migration, migrations.RunPython.noop)
    ]

"""`consent_merge` claims each address before it merges, as erasure does (docs/privacy.md,
"Erasure and concurrent writes"): the function of consents/ledger/postgres.py installed again."""

from django.db import migrations

from consents.ledger.postgres import install_merge_function_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("consents", "0010_consent_merge_function"),
    ]

    # Going back leaves the function as it is: the claim is harmless to the code before it.
    operations = [
        migrations.RunPython(install_merge_function_in_migration, migrations.RunPython.noop)
    ]

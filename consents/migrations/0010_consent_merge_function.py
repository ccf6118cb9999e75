"""The ledger's rules in SQL, the function `consent_merge` (consents/ledger/postgres.py), installed
on PostgreSQL. A later change to that statement, to its input or to the consent table ships
with a migration that runs `install_merge_function_in_migration` again."""

from django.db import migrations

from consents.ledger.postgres import (
    install_merge_function_in_migration,
    uninstall_merge_function_in_migration,
)


class Migration(migrations.Migration):
    dependencies = [
        ("consents", "0009_revoke_jobs"),
    ]

    operations = [
        migrations.RunPython(
            install_merge_function_in_migration, uninstall_merge_function_in_migration
        )
    ]

"""The bank's own accounts get a sub-account number: the clearing account of a currency becomes
PAYMENT_CLEARING_SHARDS ordinary ledger accounts, so external payments stop queueing on one row.

Existing internal accounts of one kind and currency (a race in the old first-use creation could
make two) are numbered 0, 1, ... in creation order before the uniqueness constraint is added:
their balances and entries stay as they are, and the reports sum every sub-account.
"""

from __future__ import annotations

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def number_existing(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    bank_account = apps.get_model("payments", "BankAccount")
    seen: dict[tuple[str, str], int] = {}
    for account in bank_account.objects.filter(owner__isnull=True).order_by("created_at", "id"):
        key = (account.kind, account.currency)
        shard = seen.get(key, 0)
        seen[key] = shard + 1
        if shard:
            bank_account.objects.filter(pk=account.pk).update(shard=shard)


class Migration(migrations.Migration):
    dependencies = [("payments", "0005_sca_account_access")]

    operations = [
        migrations.AddField(
            model_name="bankaccount",
            name="shard",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(number_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="bankaccount",
            constraint=models.UniqueConstraint(
                condition=models.Q(("owner__isnull", True)),
                fields=("kind", "currency", "shard"),
                name="bank_internal_account_unique_shard",
            ),
        ),
    ]

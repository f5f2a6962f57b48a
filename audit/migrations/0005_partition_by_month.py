"""PostgreSQL: the audit log becomes a table partitioned by month of `occurred_at` (audit/partitions.py).

The existing table is converted in this migration's transaction, under an ACCESS EXCLUSIVE lock
(writers wait; on a large log this takes about as long as copying it once and building its
indexes): renamed aside, a partitioned table of the same columns created, the monthly partitions
from the oldest event's month to AUDIT_PARTITION_MONTHS_AHEAD months ahead and a DEFAULT
partition created, the rows copied (ids kept, the identity sequence continued), the old table
dropped, then the keys, the same indexes under the same names, the foreign keys and the
append-only trigger recreated on the partitioned table (PostgreSQL clones indexes and the trigger
onto every partition, present and future).

The primary key becomes (id, occurred_at) and the public id's unique constraint
(public_id, occurred_at): PostgreSQL requires the partition key in them. Django's model state is
unchanged (this migration only runs SQL).

SQLite (dev mode): nothing to do; the model keeps refusing changes there.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

TABLE = "audit_auditevent"
ASIDE = "audit_auditevent_converting"
TRIGGER = """
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""


def _fetchall(cursor: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    # Every identifier in these statements is a constant of this module or read from the catalog.
    cursor.execute(sql, params or [])
    return list(cursor.fetchall())


def _rebuild(schema_editor: BaseDatabaseSchemaEditor, *, partitioned: bool) -> None:
    from datetime import date

    from django.utils import timezone

    from audit import partitions

    with schema_editor.connection.cursor() as cur:
        is_partitioned = bool(
            _fetchall(cur, "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        )
        if is_partitioned == partitioned:
            return
        cur.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        indexes = [
            str(row[1])
            for row in _fetchall(
                cur,
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
                [TABLE],
            )
            if row[0] not in (f"{TABLE}_pkey", f"{TABLE}_public_id_key")
            and not str(row[0]).startswith(f"{TABLE}_y")  # partition-level copies (the reverse way)
        ]
        foreign_keys = _fetchall(
            cur,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'f' AND conparentid = 0",
            [TABLE],
        )
        sequence = _fetchall(cur, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0][0]
        # nosec B608: the sequence name comes from pg_get_serial_sequence, the table names are constants.
        next_value = f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {sequence}"  # noqa: S608 # nosec B608
        next_id = _fetchall(cur, next_value)[0][0]
        oldest = _fetchall(cur, f'SELECT min(occurred_at) FROM "{TABLE}"')[0][0]  # noqa: S608 # nosec B608 (constant)

        cur.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{ASIDE}"')
        cur.execute(f'ALTER TABLE "{ASIDE}" DROP CONSTRAINT IF EXISTS "{TABLE}_pkey"')
        cur.execute(f'ALTER TABLE "{ASIDE}" DROP CONSTRAINT IF EXISTS "{TABLE}_public_id_key"')
        for index in indexes:
            name = index.split(" INDEX ", 1)[1].split(" ON ", 1)[0].strip()
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        for name, _ in foreign_keys:
            cur.execute(f'ALTER TABLE "{ASIDE}" DROP CONSTRAINT "{name}"')
        tail = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
        cur.execute(f'CREATE TABLE "{TABLE}" (LIKE "{ASIDE}" INCLUDING DEFAULTS INCLUDING IDENTITY){tail}')
        if partitioned:
            cur.execute(f'CREATE TABLE "{partitions.DEFAULT_PARTITION}" PARTITION OF "{TABLE}" DEFAULT')
            today = timezone.now()
            first = partitions.month_start(oldest) if oldest else partitions.month_start(today)
            last = partitions.add_months(partitions.month_start(today), partitions.months_ahead())
            month: date = first
            while month <= last:
                partitions._create_month(cur, month)
                month = partitions.add_months(month, 1)
        cur.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{ASIDE}"')  # noqa: S608 # nosec B608 (constants)
        new_sequence = _fetchall(cur, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0][0]
        cur.execute("SELECT setval(%s, %s, false)", [new_sequence, next_id])
        cur.execute(f'DROP TABLE "{ASIDE}"')
        if new_sequence != sequence:
            cur.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {str(sequence).split('.')[-1]}")
        key = ", occurred_at" if partitioned else ""
        cur.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY (id{key})')
        cur.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_public_id_key" UNIQUE (public_id{key})')
        for index in indexes:
            cur.execute(index)
        for name, definition in foreign_keys:
            cur.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
        cur.execute(TRIGGER)
        cur.execute(f'ANALYZE "{TABLE}"')


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=True)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_role_permissions")]
    operations = [migrations.RunPython(forwards, backwards)]

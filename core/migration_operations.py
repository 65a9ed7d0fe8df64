"""Migration operations the apps share."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class AddIndexOnline(AddIndexConcurrently):
    """``AddIndex`` that leaves a live table writable: on PostgreSQL the index is built with
    ``CREATE INDEX CONCURRENTLY``, where a plain build holds a lock that blocks every INSERT,
    UPDATE and DELETE until it is done (on millions of delivery attempts, minutes in which
    deliveries, receipts and order finishes wait); elsewhere (SQLite, development) it is a
    plain ``AddIndex``. Its migration must be ``atomic = False`` and hold one such index
    (with two, a failed second build leaves the first built but the migration unrecorded,
    and migrating again fails on it); a build that failed leaves an invalid index to drop
    before migrating again."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._on_vendor("database_forwards", app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._on_vendor("database_backwards", app_label, schema_editor, from_state, to_state)

    def _on_vendor(self, method: str, app_label, schema_editor, from_state, to_state):
        # CONCURRENTLY exists only on PostgreSQL; elsewhere the plain operation's own method.
        on_postgresql = schema_editor.connection.vendor == "postgresql"
        operation = AddIndexConcurrently if on_postgresql else migrations.AddIndex
        getattr(operation, method)(self, app_label, schema_editor, from_state, to_state)

"""Migration operations the apps share."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class AddIndexOnline(AddIndexConcurrently):
    """``AddIndex`` that leaves a live table writable: on PostgreSQL the index is built with
    ``CREATE INDEX CONCURRENTLY``, where a plain build holds a lock that blocks every INSERT,
    UPDATE and DELETE until it is done (on millions of delivery attempts, minutes in which
    deliveries, receipts and order finishes wait); elsewhere (SQLite, development) it is a
    plain ``AddIndex``. Its migration must be ``atomic = False``; a build that failed leaves
    an invalid index to drop before migrating again."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )

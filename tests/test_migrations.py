"""Migrations run against live tables: an index this release adds to a table the pipeline
writes all the time is built without blocking those writes."""

import pytest
from django.core.management import call_command
from django.db import connection

# (app, migration) adding an index to a table written on every delivery, receipt or order.
ONLINE_INDEXES = [
    ("notifications", "0004_notification_state_delivered_index"),
    ("notifications", "0006_attempt_started_index"),
    ("accounts", "0005_receipt_last_received_index"),
    ("accounts", "0007_receipt_out_trade_no_index"),
    ("payments", "0006_order_out_trade_no_index"),
    ("payments", "0007_order_account_no_index"),
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="CONCURRENTLY is PostgreSQL's")
@pytest.mark.parametrize(("app", "migration"), ONLINE_INDEXES)
def test_indexes_on_busy_tables_are_built_concurrently(app, migration, capsys, transactional_db):
    """On PostgreSQL a plain CREATE INDEX holds a lock that blocks every INSERT, UPDATE and
    DELETE on the table until it is built: deliveries, receipts and order finishes would
    wait through the deploy. These are built CONCURRENTLY, outside a transaction."""
    call_command("sqlmigrate", app, migration)

    sql = capsys.readouterr().out
    assert "CREATE INDEX CONCURRENTLY" in sql
    assert "BEGIN;" not in sql

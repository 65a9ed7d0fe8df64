"""Accounts (the receiver): balances and ledger, recharges, notify endpoint, reconciliation."""

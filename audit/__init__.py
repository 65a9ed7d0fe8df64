"""The books audit: payments' orders against accounts' recharges, ledger and balances."""

"""The merchant portal (/portal/): a merchant's users see that merchant's orders, notifications
with every attempt, endpoints' health and credentials, and act on them (role permitting)."""

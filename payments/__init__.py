"""Payments (the notifier): merchants, recharge orders, cashier, merchant API, order expiry."""

"""The models whose saves make the peers fire, as their READMEs intend: django-webhook on
``PeerEvent`` (the instant receiver) and ``SlowPeerEvent`` (the 250 ms receivers; a topic of
its own, since django-webhook fires every active webhook of a topic), django-signal-webhooks
on ``SignalPeerEvent``."""

from django.db import models


class PeerEvent(models.Model):
    """One event for django-webhook: ``data`` is the same recharge payload ours sends."""

    data = models.JSONField()

    def __str__(self):
        return f"peer event {self.pk}"


class SlowPeerEvent(models.Model):
    """The same, for django-webhook's webhook on the 250 ms receivers."""

    data = models.JSONField()

    def __str__(self):
        return f"slow peer event {self.pk}"


class SignalPeerEvent(models.Model):
    """One event for django-signal-webhooks: ``hook`` names the webhook it goes to
    (``bench.peers.signal_hook_filter``), ``data`` is what it sends."""

    hook = models.CharField(max_length=64)
    data = models.JSONField()

    def __str__(self):
        return f"signal peer event {self.pk}"

    def webhook_data(self) -> dict:
        """The payload django-signal-webhooks sends (its hook for a model's own data)."""
        return self.data

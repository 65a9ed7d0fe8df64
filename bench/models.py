"""The model whose saves make django-webhook (the peer) fire, as its README intends."""

from django.db import models


class PeerEvent(models.Model):
    """One event for the peer: ``data`` is the same recharge payload ours sends."""

    data = models.JSONField()

    def __str__(self):
        return f"peer event {self.pk}"

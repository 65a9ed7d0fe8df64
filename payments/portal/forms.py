"""The portal's inputs, validated before any service runs: a bad one is a 400 with reasons."""

from django import forms
from django.utils import timezone

from ..contract import RechargeStatus


class OrderSearchForm(forms.Form):
    """The orders list's query string: ``q`` (an identifier, exact) and ``status``."""

    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        help_text="Exact out_trade_no, tx_no, account_no or webhook-id (msg_…).",
    )
    status = forms.TypedChoiceField(
        required=False,
        choices=[("", "Any status"), *RechargeStatus.choices],
        coerce=int,
        empty_value=None,
    )


class RecoverForm(forms.Form):
    """An endpoint's "Recover since": a moment in the past, UTC."""

    since = forms.DateTimeField(
        label="Resend undelivered since (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.now():
            raise forms.ValidationError("Choose a moment in the past.")
        return since

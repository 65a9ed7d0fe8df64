"""The portal's inputs, validated before any service runs: a bad one is a 400 with reasons."""

from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone

from core.converters import TokenConverter

from ..contract import RechargeStatus

# A tx_no as the order URLs take it: anything else (a NUL, which PostgreSQL's text cannot
# hold) never reaches a query.
TX_NO = RegexValidator(rf"^{TokenConverter.regex}\Z", "Not a tx_no: 1-64 letters, digits, _ or -.")


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


class ResendForm(forms.Form):
    """ "Resend" and "Resend selected": the tx_no of each order (``tx_no``, repeated); how
    many may be named is the service's to say."""

    tx_no = forms.Field(required=False, widget=forms.MultipleHiddenInput)

    def clean_tx_no(self):
        tx_nos = self.cleaned_data["tx_no"] or []
        for tx_no in tx_nos:
            TX_NO(tx_no)
        return tx_nos

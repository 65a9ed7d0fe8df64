from django import forms

from core.money import parse_major


class RechargeForm(forms.Form):
    """The amount as a person types it (``12.34``), cleaned to integer minor units."""

    amount = forms.CharField(max_length=20, label="Amount")

    def __init__(self, *args, currency: str, min_amount: int, max_amount: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency, self.min_amount, self.max_amount = currency, min_amount, max_amount

    def clean_amount(self) -> int:
        try:
            amount = parse_major(self.cleaned_data["amount"], self.currency)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if not self.min_amount <= amount <= self.max_amount:
            raise forms.ValidationError("That amount is outside the allowed range.")
        return amount

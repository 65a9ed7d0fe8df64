"""An admin search over exact identifiers that reads through indexes, also through a relation."""

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.utils.text import smart_split, unescape_string_literal

# Related rows one term may name (an account_no names one account): more would be no
# identifier, and the IN list stays short.
RELATED_PER_TERM = 100


class ExactIndexedSearchMixin:
    """``search_fields`` that are all exact (``=tx_no``, ``=account__account_no``), matched so
    that every table is read through an index.

    Django's own search ORs every field into one WHERE; with a field of a related model in
    it (``tx_no = 'x' OR account.account_no = 'x'``) the OR spans a join and PostgreSQL
    answers it by reading the whole table (the ledger, the recharges: one row per order).
    Here the related rows are found first (the related model's own index), and matched by
    foreign key, so the OR is one of this table's indexed columns. Terms split and quote as
    in Django's search; every term must match (AND), as there. Only one level of relation.
    """

    def get_search_results(self, request, queryset, search_term):
        declared = self.get_search_fields(request)
        if not all(field.startswith("=") for field in declared):
            raise ImproperlyConfigured(f"{type(self).__name__}: exact search fields only")
        fields = [field.removeprefix("=") for field in declared]
        for term in _terms(search_term):
            matched = Q()
            for field in fields:
                matched |= self._matching(field, term)
            queryset = queryset.filter(matched)
        return queryset, False

    def _matching(self, field: str, term: str) -> Q:
        """``field`` equal to ``term``; for ``relation__column``, the relation's rows with that
        column looked up first."""
        relation, _, column = field.partition("__")
        if not column:
            return Q(**{field: term})
        related = self.model._meta.get_field(relation).related_model
        ids = related._default_manager.filter(**{column: term}).values_list("pk", flat=True)
        return Q(**{f"{relation}__in": list(ids[:RELATED_PER_TERM])})


def _terms(search_term: str) -> list[str]:
    """The search box's words, a quoted phrase as one (``django.contrib.admin``'s rules)."""
    terms = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        terms.append(bit)
    return terms

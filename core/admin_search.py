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

    # A search page would otherwise also count the whole table ("5 results (1,000,000
    # total)"): "Show all" instead.
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        declared = self.get_search_fields(request)
        if not all(field.startswith("=") for field in declared):
            raise ImproperlyConfigured(f"{type(self).__name__}: exact search fields only")
        fields = [field.removeprefix("=") for field in declared]
        terms = _terms(search_term)
        # One lookup per relation for all the terms, however many there are.
        related = {field: self._related_ids(field, terms) for field in fields if "__" in field}
        for term in terms:
            matched = Q()
            for field in fields:
                if field in related:
                    relation = field.partition("__")[0]
                    matched |= Q(**{f"{relation}__in": related[field].get(term, [])})
                else:
                    matched |= Q(**{field: term})
            queryset = queryset.filter(matched)
        return queryset, False

    def _related_ids(self, field: str, terms: list[str]) -> dict[str, list]:
        """For ``relation__column``: each term's related rows (their primary keys, at most
        ``RELATED_PER_TERM``) whose column equals it."""
        relation, _, column = field.partition("__")
        related = self.model._meta.get_field(relation).related_model
        found: dict[str, list] = {}
        rows = related._default_manager.filter(**{f"{column}__in": terms})
        for pk, value in rows.values_list("pk", column)[: RELATED_PER_TERM * len(terms)]:
            ids = found.setdefault(value, [])
            if len(ids) < RELATED_PER_TERM:
                ids.append(pk)
        return found


def _terms(search_term: str) -> list[str]:
    """The search box's words, a quoted phrase as one (``django.contrib.admin``'s rules)."""
    terms = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        terms.append(bit)
    return terms

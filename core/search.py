"""Staff's one search box: any identifier a customer or merchant quotes (tx_no, out_trade_no,
webhook-id, account_no, username), looked up across every app at once.

Core imports no app's models: each app registers a searcher in its ``AppConfig.ready()``
(``staff_searcher_register``): a selector of its own, ``search(*, term)`` returning
``Match``es. The admin's Find page (``core.admin_site``) shows only the matches whose admin
the staff user may view.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from django.db import models

# At most this many matches per searcher and term: an account_no can name many orders.
MATCHES_PER_SEARCHER = 20
# An identifier is a short token; anything longer is not one and is not searched.
TERM_MAX_LENGTH = 100


@dataclass(frozen=True)
class Match:
    """One row found: ``obj``, the identifier it was found by (``via``, e.g. ``"tx_no"``),
    and ``leads_to``: identifiers of the same case worth searching next (a notification's
    subject, a receipt's tx_no), so that one search shows the case from end to end.
    ``term`` is the identifier searched for: the one typed, or a lead followed."""

    obj: models.Model
    via: str
    leads_to: tuple[str, ...] = ()
    term: str = ""


@dataclass(frozen=True)
class _Searcher:
    rank: int
    search: Callable[..., Iterable[Match]]


_searchers: list[_Searcher] = []


def staff_searcher_register(*, search: Callable[..., Iterable[Match]], rank: int) -> None:
    """Add ``search(*, term) -> Match…`` to the Find page; lower ``rank`` lists first
    (payments' orders: the case staff act on). Registering the same function again replaces
    it (``ready()`` may run more than once in tests)."""
    _searchers[:] = [s for s in _searchers if s.search is not search]
    _searchers.append(_Searcher(rank, search))
    _searchers.sort(key=lambda searcher: searcher.rank)


def term_refusal(term: str) -> str | None:
    """Why ``term`` cannot be an identifier, or None: longer than ``TERM_MAX_LENGTH``, or
    holding a control character (PostgreSQL's text cannot even hold a NUL)."""
    if len(term) > TERM_MAX_LENGTH:
        return f"at most {TERM_MAX_LENGTH} characters"
    if not term.isprintable():
        return "no control characters"
    return None


def staff_search(*, term: str, visible: Callable[[models.Model], bool]) -> list[Match]:
    """Every match for ``term`` (stripped; empty or refused by ``term_refusal`` finds nothing),
    and for the identifiers the visible matches lead to (one hop), each row once.

    ``visible(obj)`` decides what the caller may see: a hidden match is dropped and its
    leads are not followed, so it cannot show through what it leads to. Ordered by the
    searchers' rank (orders first), within a rank direct matches first; each match's
    ``term`` says what found it.
    """
    term = term.strip()
    if not term or term_refusal(term):
        return []
    direct = _run([term], visible)
    leads = [lead for _, match in direct for lead in match.leads_to if lead and lead != term]
    followed = _run(list(dict.fromkeys(leads)), visible)
    seen, found = set(), []
    # sorted() is stable: within one rank, direct first, then the order each searcher gave.
    for _, match in sorted(direct + followed, key=_rank):
        key = (match.obj._meta.label, match.obj.pk)
        if key not in seen:
            seen.add(key)
            found.append(match)
    return found


def _run(terms: list[str], visible) -> list[tuple[int, Match]]:
    """``(rank, match)`` for every visible match of each of ``terms``."""
    return [
        (searcher.rank, replace(match, term=term))
        for term in terms
        for searcher in _searchers
        for match in list(searcher.search(term=term))[:MATCHES_PER_SEARCHER]
        if visible(match.obj)
    ]


def _rank(ranked: tuple[int, Match]) -> int:
    return ranked[0]

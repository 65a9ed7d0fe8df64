"""The databases the harness owns (``make demo``, ``make bench``, ``make chaos``, the e2e
tests): created empty (or from a template) before a run and dropped after it, on the
PostgreSQL server DATABASE_URL names, or as SQLite files under var/ when it names none.

Everything here takes and returns DATABASE_URLs. A driver's database has a name of its own
(``recharge_demo``, ``recharge_bench``, ...): the database DATABASE_URL itself names, which
may hold someone's data, is never created over or dropped.
"""

import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")
# An SQLite database is its file and these companions; a journal or WAL left next to a new
# file would be rolled into it.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def is_postgres(database_url: str | None) -> bool:
    """True when ``database_url`` names a PostgreSQL database (any of its URL schemes)."""
    return urlsplit(database_url or "").scheme in POSTGRES_SCHEMES


def database_name(database_url: str) -> str:
    """The database a PostgreSQL URL names (``""`` when it names none)."""
    return urlsplit(database_url).path.lstrip("/")


def own_database_url(base_url: str | None, *, name: str, sqlite_path: Path, owner: str) -> str:
    """The DATABASE_URL of a database ``owner`` (``"the demo"``, say: it is quoted in the
    error) creates and drops: database ``name`` on the PostgreSQL server ``base_url`` names,
    with its credentials and options; otherwise the SQLite file ``sqlite_path``.

    Raises SystemExit when ``base_url`` names ``name`` itself: that database is the
    operator's, and recreating it would destroy what it holds.
    """
    if not is_postgres(base_url):
        return f"sqlite:///{sqlite_path}"
    if database_name(base_url) == name:
        raise SystemExit(
            f"DATABASE_URL names {name!r}, the database {owner} drops and recreates; "
            "point it at another database on the same server."
        )
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def create_database(database_url: str, *, template_url: str | None = None) -> None:
    """Drop the database ``database_url`` names if it exists and create it again: empty, or a
    copy of the database ``template_url`` names (same server or directory, same vendor).

    PostgreSQL: ``CREATE DATABASE ... TEMPLATE``; no one may be connected to the template.
    SQLite: the files are removed (the first connection creates an empty one) or copied from
    the template's. Raises psycopg.Error when the server refuses.
    """
    drop_database(database_url)
    if is_postgres(database_url):
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(
            sql.Identifier(database_name(database_url))
        )
        if template_url:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(database_name(template_url)))
        _execute_on_server(database_url, statement)
        return
    path = _sqlite_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    if template_url:
        template = _sqlite_path(template_url)
        for suffix in ("", "-wal"):  # a template left with a WAL: copy both, consistently
            source = template.with_name(template.name + suffix)
            if source.exists():
                shutil.copyfile(source, path.with_name(path.name + suffix))


def drop_database(database_url: str) -> None:
    """Drop the database ``database_url`` names, if it exists: on PostgreSQL closing every
    connection to it (``WITH (FORCE)``), on SQLite removing its file, WAL and journal.
    Raises psycopg.Error when the server refuses."""
    if is_postgres(database_url):
        from psycopg import sql

        name = sql.Identifier(database_name(database_url))
        _execute_on_server(
            database_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
        )
        return
    path = _sqlite_path(database_url)
    for suffix in SQLITE_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def fresh_database(base_url: str | None, *, name: str, sqlite_path: Path, owner: str) -> str:
    """Create ``owner``'s database empty (see ``own_database_url`` for where, and for the
    SystemExit that guards DATABASE_URL's own database) and return its DATABASE_URL."""
    database_url = own_database_url(base_url, name=name, sqlite_path=sqlite_path, owner=owner)
    create_database(database_url)
    return database_url


def _execute_on_server(database_url: str, statement) -> None:
    """Run ``statement`` outside a transaction (CREATE and DROP DATABASE need that), connected
    to the server's ``postgres`` maintenance database as ``createdb`` and ``dropdb`` are: never
    to the database being created or dropped."""
    import psycopg

    parts = urlsplit(database_url)
    # psycopg knows only the postgres:// and postgresql:// spellings of the scheme.
    server_url = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(statement)


def _sqlite_path(database_url: str) -> Path:
    """The file of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for an absolute one)."""
    return Path(urlsplit(database_url).path[1:])


class ClonedDatabase:
    """A database recreated for every run as a copy of a template migrated once (``make
    chaos``: one per scenario). ``name`` and ``<name>_template`` on the PostgreSQL server
    ``base_url`` names, else SQLite files of those names in ``sqlite_dir``; SystemExit when
    ``base_url`` names either (see ``own_database_url``)."""

    def __init__(self, *, base_url: str | None, name: str, sqlite_dir: Path, owner: str):
        self.postgres = is_postgres(base_url)
        self.url, self.template_url = (
            own_database_url(
                base_url, name=own, sqlite_path=sqlite_dir / f"{own}.sqlite3", owner=owner
            )
            for own in (name, f"{name}_template")
        )

    @property
    def vendor(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def create_template(self) -> None:
        """The template, empty: the caller migrates and seeds it (its DATABASE_URL is
        ``template_url``)."""
        create_database(self.template_url)

    def recreate(self) -> None:
        """A fresh copy of the template. Close this process's connections to it first
        (``django.db.connections.close_all()``)."""
        create_database(self.url, template_url=self.template_url)

    def drop_template(self) -> None:
        drop_database(self.template_url)

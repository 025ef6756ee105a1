"""Alembic environment for the feedback database (run programmatically by `studio.feedback.upgrade`).

`studio.feedback.upgrade` passes an open connection, already inside a write transaction, in
`config.attributes["connection"]`; the `alembic` command line works too, with
`-x url=sqlite:////path/to/feedback.db` (or `sqlalchemy.url` set in a config file).
"""
from __future__ import annotations

from alembic import context
import sqlalchemy as sa

from studio.feedback import make_engine, metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

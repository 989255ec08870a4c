"""Storage: SQLAlchemy models, Alembic migrations, engine set-up and the queries that matter."""

from blockwatch.storage.db import Database, open_database

__all__ = ["Database", "open_database"]

"""Durable records: SQLAlchemy models, engine set-up and Alembic migrations."""

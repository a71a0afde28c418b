"""Alembic migrations of the TIP Watch database, applied at start-up."""

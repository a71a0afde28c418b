"""Database access: models, migrations, queries; full-text SQL lives in ``search``."""

ALERT_STATUSES = ("pending", "sending", "sent", "dead")  # the outbox's life cycle

"""Database tables. Schema changes go through Alembic migrations in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class SourceState(Base):
    """Last poll outcome of a configured source (the configuration itself lives in YAML)."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_poll_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_poll_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str | None] = mapped_column(String(20))  # ok | partial | failed
    last_error: Mapped[str | None] = mapped_column(Text)
    last_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # End of the source's first successful poll: what it found before then is its baseline
    # (archived, searchable, never alerted).
    baseline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HttpResource(Base):
    """What the crawler knows of each URL it fetched (canonical; aliases and failures too):
    validators and content hash for conditional GET, and when to look again."""

    __tablename__ = "http_resource"

    canonical_url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    content_type: Mapped[str | None] = mapped_column(String(200))  # its charset after a 304
    # What the feed or listing said of it (title, date, files): a change calls for a visit.
    entry_sha256: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failures in a row, the last one, and when trying again is due (exponential backoff).
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FetchLog(Base):
    """Every HTTP request made, with its outcome: the fetch history of the archive."""

    __tablename__ = "fetch_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class Publication(Base):
    """What a person thinks of as one thing, and gets one alert for: an issue of a series (every
    language, its article pages and PDFs), or an article or report with the files it came with.

    ``key`` says why its documents belong together: ``issue:<series>:<number>`` for an issue,
    ``document:<id>`` for the page or file that started it."""

    __tablename__ = "publication"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    series: Mapped[str | None] = mapped_column(String(100))
    issue_number: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Found by its source's first successful poll: archived without alerting anyone.
    baseline: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    documents: Mapped[list[Document]] = relationship(
        back_populates="publication", order_by="Document.id"
    )


class Document(Base):
    """One archived content version: identified by the sha256 of its original bytes."""

    __tablename__ = "document"
    __table_args__ = (
        # the few documents whose index is partial: every search reads them (see textsearch)
        Index(
            "ix_document_fts_partial",
            "id",
            postgresql_where=sql_text("fts_partial"),
            sqlite_where=sql_text("fts_partial"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    canonical_url: Mapped[str] = mapped_column(String(2000), index=True)
    found_on: Mapped[str | None] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(20))  # pdf | html
    media_type: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(10))
    issue_number: Mapped[int | None] = mapped_column(Integer)
    series: Mapped[str | None] = mapped_column(String(100), index=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    http_headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    text: Mapped[str] = mapped_column(Text, default="")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    extract_error: Mapped[str | None] = mapped_column(Text)
    # "pending" while a PDF waits on the extract queue (text, keywords, alerts come after);
    # attempts and the start time let a crashed or hung extraction be retried, then given up.
    extract_status: Mapped[str] = mapped_column(
        String(20), default="done", server_default="done", index=True
    )
    extract_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extract_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publication.id"), index=True)
    # The page this file arrived with: the new article (or its new version) that linked it in
    # the same poll. Such a file belongs to the page's publication.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    # The search index's tokens (worker/storage/textsearch.py), set by _index_text below:
    # SQLite's FTS5 table indexes the first four, PostgreSQL a tsvector of fts_lexemes; the
    # matcher reads the words and stems back instead of folding the text again. No Python-side
    # defaults: the hook always sets them, and rows written by older code must not name them.
    fts_words: Mapped[str] = mapped_column(Text, server_default="", deferred=True)
    fts_stems: Mapped[str] = mapped_column(Text, server_default="", deferred=True)
    fts_title_words: Mapped[str] = mapped_column(Text, server_default="", deferred=True)
    fts_title_stems: Mapped[str] = mapped_column(Text, server_default="", deferred=True)
    fts_lexemes: Mapped[str] = mapped_column(Text, server_default="", deferred=True)
    fts_partial: Mapped[bool] = mapped_column(Boolean, server_default="0")
    fts_version: Mapped[int] = mapped_column(Integer, server_default="0")

    pages: Mapped[list[DocumentPage]] = relationship(
        back_populates="document", order_by="DocumentPage.page_number", cascade="all, delete-orphan"
    )
    links: Mapped[list[DocumentLink]] = relationship(
        back_populates="document", cascade="all, delete-orphan"
    )
    publication: Mapped[Publication | None] = relationship(back_populates="documents")
    tags: Mapped[list[DocumentTag]] = relationship(
        back_populates="document",
        order_by="(DocumentTag.count.desc(), DocumentTag.tag)",
        cascade="all, delete-orphan",
    )


@event.listens_for(Document, "before_insert")
@event.listens_for(Document, "before_update")
def _index_text(_mapper: Mapper[Document], connection: Connection, target: Document) -> None:
    """Keep the search index's tokens current whenever title, text or language change."""
    state = inspect(target)
    if state.persistent and not any(
        state.attrs[name].history.has_changes() for name in ("title", "text", "language")
    ):
        return
    from worker.storage.textsearch import index_fields

    fields = index_fields(target.title, _pages_of(connection, target), target.language)
    for name, value in fields.as_columns().items():
        setattr(target, name, value)


def _pages_of(connection: Connection, target: Document) -> list[str]:
    """The document's pages as the matcher reads them: its page rows (being written with it,
    or stored), else its whole text as one page."""
    state = inspect(target)
    if "pages" not in state.unloaded:
        pages = [p.text for p in target.pages]
    elif target.id is not None:
        rows = connection.execute(
            select(DocumentPage.text)
            .where(DocumentPage.document_id == target.id)
            .order_by(DocumentPage.page_number)
        )
        pages = [text for (text,) in rows]
    else:
        pages = []
    return pages or [target.text or ""]


class DocumentPage(Base):
    """Text per page, so a match can cite the page it was found on."""

    __tablename__ = "document_page"

    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), primary_key=True)
    page_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")

    document: Mapped[Document] = relationship(back_populates="pages")


class DocumentTag(Base):
    """A taxonomy concept a document mentions (``config/taxonomy.yaml``), and how often: what
    ``tag:`` filters and the tag facets read. Written at extraction, rewritten by reindex."""

    __tablename__ = "document_tag"
    __table_args__ = (Index("ix_document_tag_tag", "tag", "document_id"),)

    document_id: Mapped[int] = mapped_column(
        ForeignKey("document.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=1)

    document: Mapped[Document] = relationship(back_populates="tags")


class DocumentLink(Base):
    """Every URL and page where a document was seen: one document, many aliases."""

    __tablename__ = "document_link"
    __table_args__ = (UniqueConstraint("document_id", "canonical_url", "found_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    canonical_url: Mapped[str] = mapped_column(String(2000), index=True)
    found_on: Mapped[str | None] = mapped_column(String(2000))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    document: Mapped[Document] = relationship(back_populates="links")


class Subscription(Base):
    """A person's standing query and where to tell them about matches.

    ``channel`` says who made it: the operator (``tipwatch subscribe``), an email address on
    the web page, or a Matrix room through the bot; ``owner`` is that address or room. Only a
    confirmed (``confirmed_at``) and active subscription is matched and alerted: an email
    address confirms through the link it was sent (double opt-in)."""

    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_owner", "channel", "owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    query: Mapped[str] = mapped_column(Text)
    notify_urls: Mapped[list[Any]] = mapped_column(default=list)
    # Optional filters: {"sources": [...], "languages": [...], "kinds": [...]}.
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    thesaurus: Mapped[bool] = mapped_column(Boolean, default=False)  # EN↔FR term expansion
    delivery: Mapped[str] = mapped_column(String(20), default="immediate")  # or daily / weekly
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # operator | email | matrix (no Python-side default: the column is newer than old rows)
    channel: Mapped[str] = mapped_column(String(20), server_default="operator")
    owner: Mapped[str | None] = mapped_column(String(320))  # the email address or room id
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Alert(Base):
    """The outbox: exactly one row per (subscription, publication), delivered at most once.

    ``document_id`` and ``explanation`` are those of the document that first matched; every
    matching document of the publication, that one included, is an :class:`AlertDocument`."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("subscription_id", "document_id"),
        Index("uq_alert_publication", "subscription_id", "publication_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), index=True
    )
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), index=True)
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publication.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Index (in the subscription's notify_urls) -> ISO time delivered: a retry never resends
    # to an endpoint that already got the alert.
    deliveries: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    subscription: Mapped[Subscription] = relationship()
    document: Mapped[Document] = relationship()
    publication: Mapped[Publication | None] = relationship()
    matches: Mapped[list[AlertDocument]] = relationship(
        back_populates="alert", order_by="AlertDocument.id", cascade="all, delete-orphan"
    )


class AlertDocument(Base):
    """One matching document of an alert's publication, with why it matched. A document that
    joins a publication after its alert went out is recorded here and sends nothing."""

    __tablename__ = "alert_document"
    __table_args__ = (UniqueConstraint("alert_id", "document_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), index=True)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="matches")
    document: Mapped[Document] = relationship()


# -- the Matrix bot (issue 18) ---------------------------------------------------------------


class MatrixSync(Base):
    """Where the bot's sync stopped (``next_batch``) and the device it logs in as: a restart
    resumes there, so commands sent while it was down are answered and old ones are not."""

    __tablename__ = "matrix_sync"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), unique=True)  # the bot account
    next_batch: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatrixRoom(Base):
    """A room the bot joined because someone invited it: the only rooms it answers in.
    Messages sent before ``joined_at`` (the room's history) are never taken as commands."""

    __tablename__ = "matrix_room"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    inviter: Mapped[str | None] = mapped_column(String(255))


class MatrixCommand(Base):
    """A command the bot took, by its event id: stored with its reply in the transaction that
    carries out the command, so each is carried out and answered once across restarts
    (``answered_at`` stays empty until the reply is accepted; a restart sends it then)."""

    __tablename__ = "matrix_command"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    sender: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reply_text: Mapped[str] = mapped_column(Text, default="")
    reply_html: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# -- self-service by email (issue 18) ------------------------------------------------------


class EmailToken(Base):
    """A link sent by email that grants one thing (``purpose``: ``confirm`` a subscription),
    stored as the SHA-256 of its secret so a copy of the database opens nothing; single use
    (``used_at``) and expiring (``expires_at``). Rows also count the confirmation emails sent
    to an address, for the per-address rate limit."""

    __tablename__ = "email_token"
    __table_args__ = (Index("ix_email_token_owner", "owner", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(320))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignupAttempt(Base):
    """One post of the subscribe form, by a client (a keyed hash of its IP address, not the
    address itself): the per-client rate limit counts these."""

    __tablename__ = "signup_attempt"
    __table_args__ = (Index("ix_signup_attempt_client", "client", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

"""The schema. Change it only together with a new Alembic revision in migrations/versions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Stable constraint names so Alembic batch migrations on SQLite can find them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite would otherwise drop the offset silently."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# BIGINT primary keys on PostgreSQL; SQLite needs INTEGER for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Target(Base):
    __tablename__ = "targets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2), default="")
    category: Mapped[str] = mapped_column(String(16), default="")
    urls: Mapped[list[str]] = mapped_column(JSONType, default=list)
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Vantage(Base):
    __tablename__ = "vantages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # local | resolver | ooni | agent | control
    country: Mapped[str] = mapped_column(String(2), default="")
    asn: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Measurement(Base):
    """One URL measured from one vantage (or the control) at one moment, with raw evidence."""

    __tablename__ = "measurements"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)  # dedup key (ours, OONI's, agent's)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), nullable=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"))
    url: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(8), default="vantage")  # vantage | control
    round_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failure: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the evidence whole (rows stored before pieces, and the ORM path), or JSON null when it is
    # stored as pieces: evidence_z (the rest, compressed) + evidence_refs (the pieces' SHA-256s).
    # Read it through storage/evidence.py (or the `evidence` property below), never directly.
    evidence_json: Mapped[Any] = mapped_column("evidence", JSONType)
    evidence_z: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    evidence_refs: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    keep: Mapped[bool] = mapped_column(Boolean, default=False)  # never pruned: anomaly or change
    # the hash chain of kept rows per vantage (storage/chain.py): position and link hash
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # a run: this row stands for itself and `repeats` later measurements of the same (URL,
    # vantage) with the same observable outcome, the last at `repeated_until` (storage/runs.py)
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    repeated_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_measurements_vantage_measured", "vantage_id", "measured_at"),
        Index("ix_measurements_target_measured", "target_id", "measured_at"),
        Index("ix_measurements_measured_at", "measured_at"),
        # partial: only chained rows are in it, and only kept rows not yet chained in the other
        Index("ix_measurements_vantage_chain", "vantage_id", "chain_seq", unique=True,
              sqlite_where=text("chain_seq IS NOT NULL"),
              postgresql_where=text("chain_seq IS NOT NULL")),
        Index("ix_measurements_unchained", "id", sqlite_where=text("keep AND chain_seq IS NULL"),
              postgresql_where=text("keep AND chain_seq IS NULL")),
    )

    @property
    def evidence(self) -> Any:
        """The evidence as data, through storage/evidence.py (read inside the row's session)."""
        from sqlalchemy.orm import object_session

        if self.evidence_z is None:
            return self.evidence_json
        from blockwatch.storage import evidence

        stored = (self.evidence_json, self.evidence_z, self.evidence_refs)
        s = object_session(self)
        if s is not None:
            return evidence.load(s, stored)
        bind = self.__dict__.get("_loaded_from")  # detached: the engine it was loaded through
        if bind is None:
            raise RuntimeError("evidence stored as pieces is read inside the row's session")
        with Session(bind) as s:
            return evidence.load(s, stored)

    @evidence.setter
    def evidence(self, value: Any) -> None:  # whole, in the JSON column (the ORM path)
        self.evidence_json, self.evidence_z, self.evidence_refs = value, None, None


@event.listens_for(Measurement, "load")
def _remember_engine(row: Measurement, context: Any) -> None:
    """A row read after its session closed still finds its evidence pieces."""
    row.__dict__["_loaded_from"] = context.session.get_bind()


class EvidencePiece(Base):
    """A part of evidence that repeats across measurements (a certificate chain, a header set, a
    DNS answer set), stored once: zstd of its canonical JSON, keyed by that JSON's SHA-256
    (storage/evidence.py). Retention deletes the pieces no row refers to any more."""

    __tablename__ = "evidence_pieces"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # chain | headers | answers
    size: Mapped[int] = mapped_column(Integer)  # characters of its JSON (db stats)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Verdict(Base):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    measurement_id: Mapped[int] = mapped_column(ForeignKey("measurements.id", ondelete="CASCADE"),
                                                unique=True)
    control_id: Mapped[int | None] = mapped_column(
        ForeignKey("measurements.id", ondelete="SET NULL"), nullable=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), nullable=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"))
    url: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str] = mapped_column(String(24))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    # what the reason is rendered from, per language (analysis/reasons.py); None on older rows
    reason_keys: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the run of its measurement: as many more verdicts, the same, the last at repeated_until
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    repeated_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # latest verdict per target and vantage; history of one target
        Index("ix_verdicts_target_vantage_measured", "target_id", "vantage_id", "measured_at"),
        Index("ix_verdicts_url_vantage_measured", "url", "vantage_id", "measured_at"),
        Index("ix_verdicts_measured_at", "measured_at"),
    )


class UrlState(Base):
    """The event state machine of one (URL, vantage): confirmed state and a pending change."""

    __tablename__ = "url_states"
    url: Mapped[str] = mapped_column(Text, primary_key=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"), primary_key=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), nullable=True)
    state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pending: Mapped[str | None] = mapped_column(String(24), nullable=True)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True)
    last_verdict_id: Mapped[int | None] = mapped_column(
        ForeignKey("verdicts.id", ondelete="SET NULL"), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Run(Base):
    """The open run of one (URL, vantage), the control's included: the full row later
    measurements with the same observable outcome extend (storage/runs.py)."""

    __tablename__ = "runs"
    url: Mapped[str] = mapped_column(Text, primary_key=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"), primary_key=True)
    measurement_id: Mapped[int] = mapped_column(
        ForeignKey("measurements.id", ondelete="CASCADE"))
    verdict_id: Mapped[int | None] = mapped_column(
        ForeignKey("verdicts.id", ondelete="SET NULL"), nullable=True)
    outcome: Mapped[str] = mapped_column(String(64))  # storage/runs.outcome_key
    body_length: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the full row's measured_at
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)  # its last repetition (or itself)


class Event(Base):
    """A confirmed state of one (URL, vantage), from `started_at` until `ended_at` (open: None)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"), nullable=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"))
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24))
    previous: Mapped[str | None] = mapped_column(String(24), nullable=True)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verdict_id: Mapped[int | None] = mapped_column(
        ForeignKey("verdicts.id", ondelete="SET NULL"), nullable=True)

    __table_args__ = (
        Index("ix_events_target_started", "target_id", "started_at"),
        Index("ix_events_detected_at", "detected_at"),
    )


class Feed(Base):
    __tablename__ = "feeds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # feed | rferl | gdelt | google_news
    kind: Mapped[str] = mapped_column(String(16), default="feed", server_default="feed")


class FeedEntry(Base):
    __tablename__ = "feed_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    entry_key: Mapped[str] = mapped_column(String(255))  # guid, else link, else content hash
    title: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_sha256: Mapped[str] = mapped_column(String(64))
    query: Mapped[str | None] = mapped_column(Text, nullable=True)  # the search query that found it
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)  # publisher site an aggregator names

    __table_args__ = (
        UniqueConstraint("feed_id", "entry_key"),
        Index("ix_feed_entries_first_seen", "first_seen_at"),
    )


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("feed_entries.id", ondelete="CASCADE"),
                                          unique=True)
    types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    outlets: Mapped[list[str]] = mapped_column(JSONType, default=list)  # target names
    people: Mapped[list[str]] = mapped_column(JSONType, default=list)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # published, else first seen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    country: Mapped[str | None] = mapped_column(String(8), nullable=True)  # as the extractor tagged it
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evidence: Mapped[Any] = mapped_column(JSONType, nullable=True)  # the words that made it an incident

    __table_args__ = (Index("ix_incidents_occurred_at", "occurred_at"),
                      Index("ix_incidents_country", "country"))


class IncidentReview(Base):
    """A person's reading of a feed entry. It overrides the extractor's: the incidents table holds
    the reviewed reading (an entry reviewed as no incident has no incident row), so every reader
    shows what the person decided. With the extractor's reading it replaced (`extracted`), it is
    labelled text from the feeds this installation reads."""

    __tablename__ = "incident_reviews"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("feed_entries.id", ondelete="CASCADE"),
                                          unique=True)
    incident: Mapped[bool] = mapped_column(Boolean)
    types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    outlets: Mapped[list[str]] = mapped_column(JSONType, default=list)
    people: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    country: Mapped[str | None] = mapped_column(String(8), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # the stored reading before the first review: {"incident": bool, "types": [...], ...}
    extracted: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    """An incident linked with a blocking event of the same outlet."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("incident_id", "event_id"),)


class Outbox(Base):
    """Every notification is written here first, then delivered; `key` makes it idempotent."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook | telegram
    destination: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # alert | digest | test
    subject: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # see alerts/outbox.py
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class DailyRollup(Base):
    """Worst state and minutes affected per target, vantage and UTC day; kept for good."""

    __tablename__ = "daily_rollups"
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"), primary_key=True)
    vantage_id: Mapped[int] = mapped_column(ForeignKey("vantages.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    worst: Mapped[str] = mapped_column(String(24))
    minutes_affected: Mapped[int] = mapped_column(Integer, default=0)
    measurements: Mapped[int] = mapped_column(Integer, default=0)

    # the site reads the last 90 days of every target; the primary key starts with target
    __table_args__ = (Index("ix_daily_rollups_day", "day"),)


class JobRun(Base):
    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)


class KeyValue(Base):
    """Small named values that must survive restarts (import cursors, table versions)."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

"""AI reports (RelatorIA, contract `reports-contract.md` §2): datasets, their file bytes, reports,
report versions, deletion tombstones, business profiles and beta leads.

Ids are UUID strings (the RelatorIA client treats them as opaque strings). Every row carries its
`company_id` and `owner_id`; every query filters by both.

Status columns hold the *outcome* a job wrote (`parsed`/`invalid`, `done`/`failed`); while a job is
active, or when it ended without writing one (a worker killed for good, an operator cancel), the
status a client sees is derived from the job row (`service.dataset_status` / `report_status`), so
a row can never be stuck in `processing`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


def new_uuid() -> str:
    return str(uuid.uuid4())


class DatasetStatus:
    UPLOADED = "uploaded"  # row created; bytes maybe not yet, or a parse job waiting
    PROCESSING = "processing"  # derived: the parse job is running
    PARSED = "parsed"
    INVALID = "invalid"


class ReportStatus:
    PENDING = "pending"
    PROCESSING = "processing"  # derived: the generate job is running
    DONE = "done"
    FAILED = "failed"


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_owner_created", "company_id", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    storage_path: Mapped[str] = mapped_column(String(400))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DatasetStatus.UPLOADED)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    sample: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    parse_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # format, encoding, delimiter
    parse_job_id: Mapped[str | None] = mapped_column(String(36))
    upload_nonce: Mapped[str | None] = mapped_column(String(64))  # the signed upload URL, single use
    parsed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class DatasetFile(Base):
    """The uploaded bytes, in Postgres so web and worker both read them (size: DATASET_MAX_BYTES)."""

    __tablename__ = "dataset_files"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class Report(Base):
    """One report request and its current result (`report_requests` in the old product)."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_owner_created", "company_id", "owner_id", "created_at"),
        Index("ix_reports_dataset", "dataset_id"),
        Index(
            "uq_reports_idempotency",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.PENDING)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    ai_response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(100))
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    llm_latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    job_id: Mapped[str | None] = mapped_column(String(36))  # the current generate job
    result_job_id: Mapped[str | None] = mapped_column(String(36))  # the job that wrote ai_response
    sent_via_email: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    last_emailed_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
    completed_at: Mapped[datetime | None]


class ReportVersion(Base):
    """One finished generation: regenerate never destroys a result."""

    __tablename__ = "report_versions"
    __table_args__ = (
        UniqueConstraint("report_id", "version"),
        UniqueConstraint("report_id", "job_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(36))
    ai_response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    model: Mapped[str | None] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(100))
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    llm_latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class ReportDeletion(Base):
    """A content-free tombstone of a deleted report (LGPD data minimisation: no AI text, no data)."""

    __tablename__ = "report_deletions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    report_id: Mapped[str] = mapped_column(String(36))
    dataset_id: Mapped[str | None] = mapped_column(String(36))
    dataset_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    company_id: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32), default="user_requested")
    deleted_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())


class BusinessProfile(Base):
    """The business profile ("bussiness_info"): one per user, upserted."""

    __tablename__ = "business_profiles"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    niche_bussiness: Mapped[str | None] = mapped_column(String(100))
    goal: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    analysis_period: Mapped[str | None] = mapped_column(String(100))
    info_priority: Mapped[list[str] | None] = mapped_column(JSONB)
    best_data_format: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class BetaLead(Base):
    __tablename__ = "beta_leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

"""Company logos (contract §9): the image bytes live in Postgres, served by a public, immutable URL.

`companies.logo_url` stays the source of truth the frontend reads. An upload stores the image in
`company_logos` (one row per company, replaced by the next upload) and points `logo_url` at
`<base>/public/company-logos/<company_id>/<sha256 prefix>.<ext>`. The hash in the URL lets
browsers cache it forever; a new image gets a new URL, so the old one stops resolving.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.features.audit import service as audit
from app.features.company.models import LOGO_EXTENSIONS, CompanyLogo
from app.features.identity.models import Company

LOGO_FIELD = "logo"
MAX_LOGO_BYTES = 5 * 1024 * 1024  # what valorize-api accepts (contract §9)
# Room for the multipart boundaries and part headers around a file of the maximum size.
MAX_REQUEST_BYTES = MAX_LOGO_BYTES + 64 * 1024
PUBLIC_PREFIX = "/public/company-logos"

TOO_LARGE_MESSAGE = f"The logo is too large: the limit is {MAX_LOGO_BYTES // (1024 * 1024)} MB"
UNSUPPORTED_MESSAGE = "Unsupported image type: the logo must be a PNG, JPEG or WebP image (not SVG)"
NO_LOGO_MESSAGE = "The company has no logo"


@dataclass(frozen=True)
class ImageKind:
    content_type: str
    extension: str


PNG = ImageKind("image/png", LOGO_EXTENSIONS["image/png"])
JPEG = ImageKind("image/jpeg", LOGO_EXTENSIONS["image/jpeg"])
WEBP = ImageKind("image/webp", LOGO_EXTENSIONS["image/webp"])
CONTENT_TYPES = tuple(LOGO_EXTENSIONS)


def sniff_image(data: bytes) -> ImageKind | None:
    """The image type from the file's magic bytes; the filename and the client's Content-Type are
    never trusted (an SVG or HTML file renamed .png must not be served as an image)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def too_large() -> Invalid:
    # 400 rather than 413: the contract lists "too large" among the upload's 400s.
    return Invalid(TOO_LARGE_MESSAGE, "FILE_TOO_LARGE", {"maxBytes": MAX_LOGO_BYTES})


def check_image(data: bytes) -> ImageKind:
    """The logo's image type; Invalid (400) when it is empty, too large or not PNG/JPEG/WebP."""
    if not data:
        raise Invalid("The logo file is empty", "EMPTY_FILE")
    if len(data) > MAX_LOGO_BYTES:
        raise too_large()
    kind = sniff_image(data)
    if kind is None:
        raise Invalid(UNSUPPORTED_MESSAGE, "UNSUPPORTED_IMAGE_TYPE")
    return kind


def public_path(company_id: str, filename: str) -> str:
    return f"{PUBLIC_PREFIX}/{company_id}/{filename}"


def _lock_company(session: Session, company_id: str) -> Company:
    """The caller's company, row-locked so concurrent uploads and deletes apply one after another."""
    query = select(Company).where(Company.id == company_id).with_for_update()
    # populate_existing: what the lock returns wins over a copy loaded earlier in this session.
    company = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if company is None or not company.is_active:
        raise NotFound("Company not found")
    return company


def save_logo(
    session: Session, company_id: str, actor_id: str | None, data: bytes, kind: ImageKind, base_url: str
) -> str:
    """Store the image as the company's logo (the previous image is overwritten: one row per
    company) and point `logo_url` at its absolute public URL, which is returned. Does not commit."""
    company = _lock_company(session, company_id)
    stored = session.get(CompanyLogo, company_id)
    if stored is None:
        stored = CompanyLogo(company_id=company_id)
        session.add(stored)
    stored.content_type = kind.content_type
    stored.data = data
    stored.sha256 = hashlib.sha256(data).hexdigest()
    stored.created_at = utcnow()
    previous_url = company.logo_url
    company.logo_url = base_url.rstrip("/") + public_path(company_id, stored.filename)
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="company.logo_upload",
        entity_type="company",
        entity_id=company_id,
        changes={
            "logo_url": {"from": previous_url, "to": company.logo_url},
            "content_type": kind.content_type,
            "size": len(data),
            "sha256": stored.sha256,
        },
    )
    return company.logo_url


def delete_logo(session: Session, company_id: str, actor_id: str | None) -> None:
    """Clear `logo_url` and drop the stored image; 404 when the company has no logo. Does not commit."""
    company = _lock_company(session, company_id)
    if not company.logo_url:
        raise NotFound(NO_LOGO_MESSAGE, "NO_LOGO")
    previous_url = company.logo_url
    company.logo_url = None
    stored = session.get(CompanyLogo, company_id)
    if stored is not None:  # a URL set through PATCH /admin/company/info has no stored image
        session.delete(stored)
    session.flush()
    audit.record(
        session,
        company_id=company_id,
        actor_id=actor_id,
        action="company.logo_delete",
        entity_type="company",
        entity_id=company_id,
        changes={"logo_url": {"from": previous_url, "to": None}},
    )


def find_public_logo(session: Session, company_id: str, filename: str) -> CompanyLogo | None:
    """The stored logo behind a public URL, or None when it is not the company's current logo.

    `logo_url` must still point at it: PATCH /admin/company/info can clear or replace the URL
    without going through DELETE, and then the old image must stop being served too.
    """
    row = session.execute(
        select(CompanyLogo, Company.logo_url)
        .join(Company, Company.id == CompanyLogo.company_id)
        .where(CompanyLogo.company_id == company_id)
    ).one_or_none()
    if row is None:
        return None
    logo, logo_url = row
    if logo.filename != filename or not logo_url or not logo_url.endswith(public_path(company_id, filename)):
        return None
    return logo

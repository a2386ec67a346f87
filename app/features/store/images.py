"""Prize images (contract §S4): uploaded files stored in Postgres like company logos, validated with
the logo's own rules (type recognised from the bytes, PNG/JPEG/WebP, 5 MB each), at most four per
prize. A prize's `images` list holds URLs (uploaded ones point at our public route; synced vouchers
keep the provider's); an uploaded image is served only while the list still holds its URL."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict

from app.errors import Invalid, NotFound
from app.features.company.logos import CONTENT_TYPES, MAX_LOGO_BYTES, ImageKind, sniff_image
from app.features.store.catalogue import own_prize
from app.features.store.models import Prize, PrizeImage

MAX_IMAGES = 4
SERVED_TYPES = CONTENT_TYPES  # what the public route answers (the upload accepts only these)
MAX_IMAGE_BYTES = MAX_LOGO_BYTES
MAX_REQUEST_BYTES = MAX_IMAGES * MAX_IMAGE_BYTES + 256 * 1024
PUBLIC_PREFIX = "/public/prize-images"
_HASH_CHARS = 16
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def read_uploads(files: MultiDict[str, FileStorage]) -> list[tuple[bytes, ImageKind]]:
    """Every uploaded file (any field name, `images` in the UI), validated before anything is
    stored: nothing is written when one of them is refused."""
    uploads = [f for _, f in files.items(multi=True)]
    if not uploads:
        raise Invalid("Send the images as multipart/form-data files (field `images`)", "NO_FILE")
    if len(uploads) > MAX_IMAGES:
        raise Invalid(f"At most {MAX_IMAGES} images per request", "TOO_MANY_FILES")
    found = []
    for upload in uploads:
        data = upload.stream.read(MAX_IMAGE_BYTES + 1)
        if not data:
            raise Invalid("An image file is empty", "EMPTY_FILE")
        if len(data) > MAX_IMAGE_BYTES:
            raise Invalid(
                f"An image is too large: the limit is {MAX_IMAGE_BYTES // 2**20} MB each", "FILE_TOO_LARGE"
            )
        kind = sniff_image(data)
        if kind is None:
            raise Invalid("Unsupported image type: use JPEG, PNG or WebP", "UNSUPPORTED_IMAGE_TYPE")
        found.append((data, kind))
    return found


def public_path(prize_id: str, sha256: str, content_type: str) -> str:
    return f"{PUBLIC_PREFIX}/{prize_id}/{sha256[:_HASH_CHARS]}.{_EXTENSIONS[content_type]}"


def add_images(
    session: Session, company_id: str, prize_id: str, uploads: list[tuple[bytes, ImageKind]], base_url: str
) -> list[str]:
    prize = own_prize(session, company_id, prize_id, lock=True)
    current = list(prize.images or [])
    if len(current) + len(uploads) > MAX_IMAGES:
        raise Invalid(
            f"A prize can have at most {MAX_IMAGES} images ({len(current)} already)", "TOO_MANY_IMAGES"
        )
    for data, kind in uploads:
        digest = hashlib.sha256(data).hexdigest()
        if session.get(PrizeImage, (prize.id, digest)) is None:
            session.add(
                PrizeImage(prize_id=prize.id, sha256=digest, content_type=kind.content_type, data=data)
            )
        url = base_url.rstrip("/") + public_path(prize.id, digest, kind.content_type)
        if url not in current:
            current.append(url)
    prize.images = current
    session.flush()
    return current


def remove_image(session: Session, company_id: str, prize_id: str, index: int) -> list[str]:
    prize = own_prize(session, company_id, prize_id, lock=True)
    current = list(prize.images or [])
    if not 0 <= index < len(current):
        raise Invalid("Invalid image index", "INVALID_INDEX")
    removed = current.pop(index)
    prize.images = current
    for stored in session.scalars(select(PrizeImage).where(PrizeImage.prize_id == prize.id)):
        if removed.endswith(public_path(prize.id, stored.sha256, stored.content_type)):
            session.delete(stored)
    session.flush()
    return current


def find_public(session: Session, prize_id: str, filename: str) -> PrizeImage | None:
    """The stored image behind a public URL, only while the prize still lists it."""
    stem = filename.rsplit(".", 1)[0]
    if len(stem) != _HASH_CHARS:
        return None
    prize = session.get(Prize, prize_id)
    if prize is None:
        return None
    for stored in session.scalars(
        select(PrizeImage).where(PrizeImage.prize_id == prize_id, PrizeImage.sha256.startswith(stem))
    ):
        path = public_path(prize_id, stored.sha256, stored.content_type)
        if path.endswith("/" + filename) and any(url.endswith(path) for url in prize.images or []):
            return stored
    return None


def not_found() -> NotFound:
    return NotFound("Image not found")

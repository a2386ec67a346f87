"""/admin/company/info, its logo and /admin/company/coin-economy (contract §9): bare objects, no
envelope; plus the public route that serves uploaded logos."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, request
from flask.views import MethodView
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from app import runtime
from app.api import BEARER, ApiError, Blueprint, cap_request_body, request_session
from app.auth import current_user, login_required, require_permission
from app.errors import Invalid
from app.features.company import logos, service
from app.features.company.logo_schemas import LogoDeletedSchema, LogoUploadSchema, LogoUrlSchema
from app.features.company.models import CompanySettings
from app.features.company.schemas import (
    CoinEconomyBody,
    CoinEconomySchema,
    CompanyInfoBody,
    CompanyInfoSchema,
    CompanyInfoUpdatedSchema,
)
from app.features.identity.models import Company

blp = Blueprint(
    "company", __name__, url_prefix="/admin/company", description="Company info and coin economy settings"
)
# Public on purpose: an <img> tag cannot send a bearer token. The URLs carry the content hash.
public_logos = Blueprint(
    "company_logos_public",
    __name__,
    url_prefix=logos.PUBLIC_PREFIX,
    description="Uploaded company logos (public, immutable URLs)",
)

F = TypeVar("F", bound=Callable[..., Any])


@blp.route("/info")
class CompanyInfo(MethodView):
    @login_required
    @blp.response(200, CompanyInfoSchema)
    @blp.doc(security=BEARER)
    def get(self) -> Company:
        """The caller's company (any authenticated user)."""
        return service.get_company(request_session(), current_user().company_id)

    @require_permission("company:manage_settings")
    @blp.arguments(CompanyInfoBody)
    @blp.response(200, CompanyInfoUpdatedSchema)
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any]) -> Company:
        """Change the name, logo URL ("" or null clears it) or IANA timezone."""
        session = request_session()
        company = service.update_company_info(session, current_user().company_id, body)
        session.commit()
        return company


@blp.route("/coin-economy")
class CoinEconomy(MethodView):
    @login_required
    @blp.response(200, CoinEconomySchema)
    @blp.doc(security=BEARER)
    def get(self) -> CompanySettings:
        """Weekly allowance and renewal day (created with defaults 100 / Monday on first read)."""
        session = request_session()
        settings = service.get_coin_economy(session, current_user().company_id)
        session.commit()
        return settings

    @require_permission("company:manage_settings")
    @blp.arguments(CoinEconomyBody)
    @blp.response(200, CoinEconomySchema)
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def patch(self, body: dict[str, int]) -> CompanySettings:
        """Change the weekly renewal amount (50 to 500) and renewal day (1 = Monday ... 7 = Sunday)."""
        session = request_session()
        settings = service.update_coin_economy(session, current_user().company_id, body)
        session.commit()
        return settings


def _limit_logo_body(view: F) -> F:
    """Refuse an oversized upload from its Content-Length before reading it, and cap a chunked
    body while it streams (the app-wide MAX_CONTENT_LENGTH is larger). Must run before the
    multipart body is parsed, i.e. above `blp.arguments`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cap_request_body(logos.MAX_REQUEST_BYTES, logos.too_large())
        try:
            return view(*args, **kwargs)
        except RequestEntityTooLarge:  # raised by the form parser when the stream passes the cap
            raise logos.too_large() from None

    return wrapper  # type: ignore[return-value]


def _read_upload(files: MultiDict[str, FileStorage]) -> bytes:
    """The one uploaded file's bytes (never more than one byte past the limit); Invalid (400) for
    no file or several (nothing written)."""
    uploads = list(files.items(multi=True))
    if not files.getlist(logos.LOGO_FIELD):
        raise Invalid(f"Send the logo as a multipart/form-data file field '{logos.LOGO_FIELD}'", "NO_FILE")
    if len(uploads) > 1:
        raise Invalid("Send exactly one file: the logo", "TOO_MANY_FILES", {"files": len(uploads)})
    return files[logos.LOGO_FIELD].stream.read(logos.MAX_LOGO_BYTES + 1)


@blp.route("/info/logo")
class CompanyInfoLogo(MethodView):
    @require_permission("company:manage_settings")
    @_limit_logo_body
    @blp.arguments(LogoUploadSchema, location="files")
    @blp.response(200, LogoUrlSchema)
    @blp.alt_response(400, description="No file, several files, empty, over 5 MB, or not PNG/JPEG/WebP")
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.doc(security=BEARER)
    def post(self, _upload: dict[str, Any]) -> dict[str, str]:
        """Upload the company logo (multipart field `logo`); it replaces the previous one.

        Answers the logo's absolute public URL, also saved as the company's `logo_url`."""
        # The parsed schema only holds the first file; the others must be refused too.
        data = _read_upload(request.files)
        kind = logos.check_image(data)
        user = current_user()
        session = request_session()
        logo_url = logos.save_logo(
            session, user.company_id, user.id, data, kind, runtime.settings().public_api_url
        )
        session.commit()
        return {"logo_url": logo_url}

    @require_permission("company:manage_settings")
    @blp.response(200, LogoDeletedSchema)
    @blp.alt_response(403, description="Missing company:manage_settings")
    @blp.alt_response(404, description="The company has no logo")
    @blp.doc(security=BEARER)
    def delete(self) -> dict[str, Any]:
        """Remove the company logo: clears `logo_url` and deletes the stored image."""
        user = current_user()
        session = request_session()
        logos.delete_logo(session, user.company_id, user.id)
        session.commit()
        return {"success": True, "message": "Logo removed"}


@public_logos.route("/<string:company_id>/<string:filename>", methods=["GET"])
@public_logos.doc(
    responses={
        "200": {
            "description": "The image, cacheable forever (a new logo gets a new URL)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in logos.CONTENT_TYPES},
        }
    }
)
@public_logos.alt_response(404, description="No such logo, or no longer the company's current one")
def company_logo_file(company_id: str, filename: str) -> BaseResponse:
    """A company's logo image (no auth: the URL is what `logo_url` holds)."""
    logo = logos.find_public_logo(request_session(), company_id, filename)
    if logo is None:
        raise ApiError(404, "Logo not found")
    response = Response(logo.data, mimetype=logo.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"  # never let a browser reinterpret it
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # shown by the frontend's origin
    response.set_etag(logo.sha256)
    return response.make_conditional(request)

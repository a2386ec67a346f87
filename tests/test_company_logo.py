"""POST/DELETE /admin/company/info/logo (contract §9) and the public route serving the image."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app import db
from app.features.audit.models import AuditLog
from app.features.company import views as company_views
from app.features.company.logos import MAX_LOGO_BYTES
from app.features.company.models import CompanyLogo
from app.features.identity.models import Company

LOGO = "/admin/company/info/logo"
PREFIX = "http://localhost:8000/public/company-logos/"  # PUBLIC_API_URL's default in dev/test
CACHE_FOREVER = "public, max-age=31536000, immutable"


def _png(rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# Only the leading bytes matter to the check; the rest is filler.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8L" + struct.pack("<I", 10) + b"\x2f" + b"\x00" * 9
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(
    client: Any, headers: dict[str, str], data: bytes, name: str = "logo.png", mime: str = "image/png"
) -> Any:
    return client.post(
        LOGO,
        data={"logo": (io.BytesIO(data), name, mime)},
        headers=headers,
        content_type="multipart/form-data",
    )


def _logo_url(company_id: str) -> str | None:
    with db.session_scope() as session:
        return session.get_one(Company, company_id).logo_url


def _stored() -> list[tuple[str, str, bytes]]:
    with db.session_scope() as session:
        rows = session.scalars(select(CompanyLogo).order_by(CompanyLogo.company_id))
        return [(r.company_id, r.content_type, r.data) for r in rows]


def _audit(action: str) -> list[AuditLog]:
    with db.session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _audit_count() -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AuditLog)) or 0)


# --- upload and serve ----------------------------------------------------------------------------


def test_upload_stores_the_png_and_serves_it_publicly(client, make_tenant):
    tenant = make_tenant()
    png = _png()
    response = _upload(client, tenant.headers(), png)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"logo_url"}
    url = body["logo_url"]
    assert url.startswith(f"{PREFIX}{tenant.company_id}/") and url.endswith(".png")
    assert _logo_url(tenant.company_id) == url
    info = client.get("/admin/company/info", headers=tenant.headers()).get_json()
    assert info["logo_url"] == url

    served = client.get(url)  # no Authorization: an <img> tag sends none
    assert served.status_code == 200
    assert served.data == png
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"] == CACHE_FOREVER
    # Public routes ignore a stale bearer token (contract §1.1).
    assert client.get(url, headers=_bearer("expired.or.bogus")).status_code == 200
    # The ETag is the content hash, so a revalidation is a 304.
    assert client.get(url, headers={"If-None-Match": served.headers["ETag"]}).status_code == 304

    [entry] = _audit("company.logo_upload")
    assert (entry.company_id, entry.actor_id, entry.entity_id) == (
        tenant.company_id,
        tenant.admin_id,
        tenant.company_id,
    )
    assert entry.changes["logo_url"] == {"from": None, "to": url}


@pytest.mark.parametrize(
    ("data", "content_type", "extension"),
    [(JPEG, "image/jpeg", "jpg"), (WEBP, "image/webp", "webp")],
)
def test_jpeg_and_webp_are_recognised_by_content_not_name(client, make_tenant, data, content_type, extension):
    tenant = make_tenant()
    # The filename and the client's type lie; the magic bytes decide.
    response = _upload(client, tenant.headers(), data, name="logo.gif", mime="application/octet-stream")
    assert response.status_code == 200, response.get_json()
    url = response.get_json()["logo_url"]
    assert url.endswith(f".{extension}")
    served = client.get(url)
    assert served.status_code == 200 and served.data == data
    assert served.headers["Content-Type"] == content_type


def test_a_second_upload_replaces_the_first(client, make_tenant):
    tenant = make_tenant()
    first = _upload(client, tenant.headers(), _png((255, 0, 0))).get_json()["logo_url"]
    second_png = _png((0, 0, 255))
    response = _upload(client, tenant.headers(), second_png)
    assert response.status_code == 200
    second = response.get_json()["logo_url"]
    assert second != first
    assert client.get(first).status_code == 404
    assert client.get(second).data == second_png
    assert _stored() == [(tenant.company_id, "image/png", second_png)]
    assert _logo_url(tenant.company_id) == second
    assert [e.changes["logo_url"]["from"] for e in _audit("company.logo_upload")].count(first) == 1


def test_the_public_url_needs_the_current_hash_and_extension(client, make_tenant):
    tenant = make_tenant()
    url = _upload(client, tenant.headers(), _png()).get_json()["logo_url"]
    assert client.get(url).status_code == 200
    digest = url.rsplit("/", 1)[1].split(".")[0]
    base = f"{PREFIX}{tenant.company_id}/"
    for wrong in (f"{'0' * len(digest)}.png", f"{digest}.jpg", f"{digest}", "nope.png"):
        response = client.get(base + wrong)
        assert response.status_code == 404, wrong
        assert response.get_json()["message"]
    other = make_tenant("Other Co")
    assert client.get(f"{PREFIX}{other.company_id}/{digest}.png").status_code == 404


def test_clearing_logo_url_through_patch_stops_serving_the_image(client, make_tenant):
    tenant = make_tenant("Acme Corp")
    url = _upload(client, tenant.headers(), _png()).get_json()["logo_url"]
    assert client.get(url).status_code == 200
    response = client.patch(
        "/admin/company/info", json={"name": "Acme Corp", "logo_url": ""}, headers=tenant.headers()
    )
    assert response.status_code == 200
    assert client.get(url).status_code == 404


# --- refused uploads ------------------------------------------------------------------------------


def _assert_unchanged(client: Any, company_id: str, url: str, png: bytes, audits: int) -> None:
    assert _logo_url(company_id) == url
    assert _stored() == [(company_id, "image/png", png)]
    assert client.get(url).data == png
    assert _audit_count() == audits


def _file(data: bytes, name: str = "logo.png", mime: str = "image/png") -> tuple[bytes, str, str]:
    return data, name, mime


_BIG_PNG = _png() + b"\x00" * (MAX_LOGO_BYTES + 1 - len(_png()))  # one byte over the limit


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        pytest.param([("logo", _file(SVG, "logo.svg", "image/svg+xml"))], "UNSUPPORTED_IMAGE_TYPE", id="svg"),
        pytest.param([("logo", _file(b"hello, I am text\n"))], "UNSUPPORTED_IMAGE_TYPE", id="text-as-png"),
        pytest.param([("logo", _file(b""))], "EMPTY_FILE", id="empty"),
        pytest.param([("name", "no file here")], "VALIDATION_ERROR", id="no-file"),
        pytest.param([("file", _file(_png()))], "VALIDATION_ERROR", id="wrong-field"),
        pytest.param([("logo", _file(_png())), ("logo", _file(_png()))], "TOO_MANY_FILES", id="two-files"),
        pytest.param([("logo", _file(_png())), ("extra", _file(_png()))], "TOO_MANY_FILES", id="two-fields"),
        pytest.param([("logo", _file(_BIG_PNG))], "FILE_TOO_LARGE", id="just-over-5mb"),
        # Refused from the Content-Length, before the body is read.
        pytest.param([("logo", _file(_BIG_PNG + b"\x00" * 2**20))], "FILE_TOO_LARGE", id="6mb"),
        pytest.param(None, "VALIDATION_ERROR", id="json-body"),
    ],
)
def test_bad_uploads_are_400_and_change_nothing(client, make_tenant, parts, code):
    tenant = make_tenant()
    png = _png()
    url = _upload(client, tenant.headers(), png).get_json()["logo_url"]
    audits = _audit_count()
    if parts is None:
        response = client.post(LOGO, json={"logo": "https://example.com/logo.png"}, headers=tenant.headers())
    else:
        form = MultiDict(
            [
                (key, (io.BytesIO(value[0]), *value[1:]) if isinstance(value, tuple) else value)
                for key, value in parts
            ]
        )
        response = client.post(LOGO, data=form, headers=tenant.headers(), content_type="multipart/form-data")
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["message"] and body["message"] == body["error"]["message"]
    _assert_unchanged(client, tenant.company_id, url, png, audits)


def test_a_streamed_body_over_the_limit_is_cut_off_with_400(client, make_tenant, monkeypatch):
    """A chunked upload has no Content-Length: the cap applies while the body streams."""
    tenant = make_tenant()

    def never_reached(*_: Any) -> None:
        raise AssertionError("the body should have been cut off while parsing")

    monkeypatch.setattr(company_views, "_read_upload", never_reached)
    boundary = "logo-boundary"
    payload = _png() + b"\x00" * (6 * 1024 * 1024)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="logo"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        LOGO,
        input_stream=io.BytesIO(body),
        headers={**tenant.headers(), "Transfer-Encoding": "chunked"},
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "FILE_TOO_LARGE"
    assert _logo_url(tenant.company_id) is None and _stored() == []


# --- permissions and tenants ------------------------------------------------------------------------


def test_upload_and_delete_need_manage_settings(client, make_tenant, make_user):
    tenant = make_tenant()
    png = _png()
    url = _upload(client, tenant.headers(), png).get_json()["logo_url"]
    audits = _audit_count()
    _, token = make_user(tenant.company_id, role="Employee")
    response = _upload(client, _bearer(token), _png((0, 255, 0)))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "INSUFFICIENT_PERMISSION"
    assert client.delete(LOGO, headers=_bearer(token)).status_code == 403
    assert _upload(client, {}, _png()).status_code == 401
    assert client.delete(LOGO).status_code == 401
    _assert_unchanged(client, tenant.company_id, url, png, audits)


def test_another_company_only_changes_its_own_logo(client, make_tenant):
    acme = make_tenant("Acme")
    other = make_tenant("Other Co")
    acme_png, other_png = _png((1, 2, 3)), _png((4, 5, 6))
    acme_url = _upload(client, acme.headers(), acme_png).get_json()["logo_url"]
    other_url = _upload(client, other.headers(), other_png).get_json()["logo_url"]
    assert other_url.startswith(f"{PREFIX}{other.company_id}/")
    assert _logo_url(acme.company_id) == acme_url
    assert client.get(acme_url).data == acme_png

    assert client.delete(LOGO, headers=other.headers()).status_code == 200
    assert _logo_url(other.company_id) is None
    assert _logo_url(acme.company_id) == acme_url
    assert _stored() == [(acme.company_id, "image/png", acme_png)]
    assert client.get(acme_url).status_code == 200
    assert {e.company_id for e in _audit("company.logo_delete")} == {other.company_id}


# --- delete ------------------------------------------------------------------------------------------


def test_delete_clears_the_logo_then_404s(client, make_tenant):
    tenant = make_tenant()
    url = _upload(client, tenant.headers(), _png()).get_json()["logo_url"]
    assert client.get(url).status_code == 200
    response = client.delete(LOGO, headers=tenant.headers())
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True and body["message"]
    assert _logo_url(tenant.company_id) is None
    assert _stored() == []
    assert client.get(url).status_code == 404
    assert client.get("/admin/company/info", headers=tenant.headers()).get_json()["logo_url"] is None
    [entry] = _audit("company.logo_delete")
    assert entry.changes == {"logo_url": {"from": url, "to": None}}

    again = client.delete(LOGO, headers=tenant.headers())
    assert again.status_code == 404
    assert again.get_json()["message"]
    assert len(_audit("company.logo_delete")) == 1


def test_delete_clears_a_logo_url_set_by_patch(client, make_tenant):
    tenant = make_tenant("Acme Corp")
    client.patch(
        "/admin/company/info",
        json={"name": "Acme Corp", "logo_url": "https://cdn.example.com/logo.png"},
        headers=tenant.headers(),
    )
    assert client.delete(LOGO, headers=tenant.headers()).status_code == 200
    assert _logo_url(tenant.company_id) is None


# --- schema and docs -------------------------------------------------------------------------------


def test_model_matches_the_migration(app):
    def only_logos(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) == "company_logos"

    with db.engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": only_logos})
        assert compare_metadata(context, CompanyLogo.metadata) == []
        assert "company_logos" in conn.dialect.get_table_names(conn)


def test_logo_routes_are_documented(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    assert {"post", "delete"} <= set(paths[LOGO])
    post = paths[LOGO]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert post["security"] == [{"bearerAuth": []}]
    public = paths["/public/company-logos/{company_id}/{filename}"]["get"]
    assert "security" not in public
    assert "image/png" in public["responses"]["200"]["content"]


def test_the_logo_url_is_built_from_public_api_url_not_from_the_request(make_tenant, settings):
    """The URL handed out is PUBLIC_API_URL's (https on Railway), whatever Host or X-Forwarded-*
    headers the request carried: a forged Host cannot plant another site's address in logo_url."""
    from dataclasses import replace

    from app import create_app, runtime

    proxied = create_app(
        replace(settings, trusted_proxy_hops=1, public_api_url="https://api.valorize.example")
    ).test_client()
    try:
        tenant = make_tenant()
        forged = {"Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}
        response = _upload(proxied, {**tenant.headers(), **forged}, _png())
        assert response.status_code == 200, response.get_json()
        url = response.get_json()["logo_url"]
        assert url.startswith("https://api.valorize.example/public/company-logos/")
    finally:
        runtime.init(settings)

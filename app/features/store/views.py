"""Employee store routes (contract §S1-§S3): catalogue, redemptions, addresses; auth only, bare
bodies. Plus the public route serving uploaded prize images."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from flask import Response
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from app.api import BEARER, IDEMPOTENCY_KEY_PARAM, Blueprint, idempotency_key, request_session
from app.auth import CurrentUser, current_user, login_required
from app.errors import NotFound
from app.features.store import addresses, catalogue, flows, images, present, redemptions, states
from app.features.store.schemas import (
    AddressEnvelopeSchema,
    AddressesSchema,
    AddressSavedSchema,
    AddressSchema,
    CancelledSchema,
    CancelSchema,
    CatalogQuerySchema,
    CatalogSchema,
    CategoriesSchema,
    MessageSchema,
    MyRedemptionEnvelopeSchema,
    MyRedemptionsQuerySchema,
    MyRedemptionsSchema,
    PrizeEnvelopeSchema,
    RedeemedSchema,
    RedeemSchema,
)

prizes_blp = Blueprint("prizes", __name__, url_prefix="/prizes", description="Prize catalogue (employee)")
redemptions_blp = Blueprint(
    "redemptions", __name__, url_prefix="/redemptions", description="Redeem prizes, order history (employee)"
)
addresses_blp = Blueprint("addresses", __name__, url_prefix="/addresses", description="Delivery addresses")
# Public on purpose: an <img> tag cannot send a bearer token (like /public/company-logos).
public_images = Blueprint(
    "prize_images_public",
    __name__,
    url_prefix=images.PUBLIC_PREFIX,
    description="Uploaded prize images (public)",
)

_REDEEM_KEY = dict(
    deepcopy(IDEMPOTENCY_KEY_PARAM),
    description="A retry with the same key answers the redemption the first request created",
)


def _redeemer(user: CurrentUser) -> flows.Redeemer:
    return flows.Redeemer(user.id, user.company_id, user.name, user.email)


# --- catalogue ------------------------------------------------------------------------------------


@prizes_blp.route("/catalog")
class Catalog(MethodView):
    @login_required
    @prizes_blp.arguments(CatalogQuerySchema, location="query")
    @prizes_blp.response(200, CatalogSchema)
    @prizes_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Active, in-stock prizes of the company and the global ones; filters `category`, `search`,
        `minPrice`/`maxPrice`, `sortBy` (popular, most_redeemed, price_asc, price_desc, newest).
        With `pageSize`, one page and `{total, page, pageSize}`; without it, every match."""
        user = current_user()
        session = request_session()
        q = catalogue.CatalogQuery(
            category=query.get("category"),
            search=(query.get("search") or "").strip() or None,
            min_price=query.get("minPrice"),
            max_price=query.get("maxPrice"),
            sort_by=query.get("sortBy"),
            page=query.get("page"),
            page_size=query.get("pageSize"),
        )
        rows, total = catalogue.list_catalog(session, user.company_id, q)
        variants = catalogue.active_variants(session, [p.id for p in rows])
        body: dict[str, Any] = {"prizes": [present.prize(p, variants.get(p.id)) for p in rows]}
        if q.page_size:
            body.update(total=total, page=q.page or 1, pageSize=q.page_size)
        return body


@prizes_blp.route("/catalog/<prize_id>")
class CatalogItem(MethodView):
    @login_required
    @prizes_blp.response(200, PrizeEnvelopeSchema)
    @prizes_blp.alt_response(404, description="Unknown, inactive, sold out or another company's")
    @prizes_blp.doc(security=BEARER)
    def get(self, prize_id: str) -> dict[str, Any]:
        """One visible, active prize with its in-stock variants (404 otherwise)."""
        user = current_user()
        session = request_session()
        prize = catalogue.visible_prize(session, user.company_id, prize_id)
        variants = catalogue.active_variants(session, [prize.id])
        return {"prize": present.prize(prize, variants.get(prize.id))}


@prizes_blp.route("/categories")
class Categories(MethodView):
    @login_required
    @prizes_blp.response(200, CategoriesSchema)
    @prizes_blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """Distinct categories of the prizes the caller can redeem now."""
        user = current_user()
        return {"categories": catalogue.categories(request_session(), user.company_id)}


# --- redemptions ----------------------------------------------------------------------------------


@redemptions_blp.route("/redeem")
class Redeem(MethodView):
    @login_required
    @redemptions_blp.arguments(RedeemSchema)
    @redemptions_blp.response(201, RedeemedSchema)
    @redemptions_blp.alt_response(400, description="A redemption rule: balance, address, variant")
    @redemptions_blp.alt_response(404, description="The prize is unknown or not active")
    @redemptions_blp.alt_response(409, description="Out of stock")
    @redemptions_blp.doc(security=BEARER, parameters=[_REDEEM_KEY])
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Redeem a prize with redeemable coins, in one short transaction (no network call): the
        wallet is locked, the coins debited soonest-to-expire first, one unit of stock taken, the
        address snapshotted and, for a voucher, its issue job enqueued. An `Idempotency-Key` header
        makes a retry return the same redemption. 409 when out of stock, 400 for any other rule."""
        user = current_user()
        session = request_session()
        key = idempotency_key()
        req = flows.RedeemRequest(
            body["prizeId"], body.get("variantId") or None, body.get("addressId") or None, key
        )
        try:
            row, _ = flows.redeem(session, _redeemer(user), req)
            session.commit()
        except IntegrityError:
            # A concurrent request with the same key committed first: answer with its redemption.
            session.rollback()
            found = redemptions.by_idempotency_key(session, user.id, key) if key else None
            if found is None:
                raise
            row = found
        return {"message": "Prize redeemed successfully", "redemption": present.redemption_row(row)}, 201


@redemptions_blp.route("/my-redemptions")
class MyRedemptions(MethodView):
    @login_required
    @redemptions_blp.arguments(MyRedemptionsQuerySchema, location="query")
    @redemptions_blp.response(200, MyRedemptionsSchema)
    @redemptions_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The caller's redemptions, newest first; filters `status` (any case), `fromDate`/`toDate`
        (inclusive, on redeemedAt) and `search` (prize name)."""
        user = current_user()
        session = request_session()
        q = redemptions.MyQuery(
            limit=query["limit"],
            offset=query["offset"],
            status=states.parse_status(query["status"]) if query.get("status") else None,
            from_date=query.get("fromDate"),
            to_date=query.get("toDate"),
            search=(query.get("search") or "").strip() or None,
        )
        rows = redemptions.list_mine(session, user.id, q)
        prizes = redemptions.prizes_of(session, [r.prize_id for r in rows])
        variants = redemptions.variants_of(session, [r.variant_id or "" for r in rows])
        track = redemptions.tracking_of(session, [r.id for r in rows])
        items = [
            present.my_item(r, prizes[r.prize_id], variants.get(r.variant_id or ""), track[r.id])
            for r in rows
        ]
        return {"redemptions": items, "meta": {"limit": q.limit, "offset": q.offset, "count": len(items)}}


@redemptions_blp.route("/my-redemptions/<redemption_id>")
class MyRedemption(MethodView):
    @login_required
    @redemptions_blp.response(200, MyRedemptionEnvelopeSchema)
    @redemptions_blp.alt_response(404, description="Not one of the caller's redemptions")
    @redemptions_blp.doc(security=BEARER)
    def get(self, redemption_id: str) -> dict[str, Any]:
        """One of the caller's redemptions (404 for anyone else's)."""
        user = current_user()
        session = request_session()
        row = redemptions.for_user(session, user.id, redemption_id)
        prize = redemptions.prizes_of(session, [row.prize_id])[row.prize_id]
        variant = redemptions.variants_of(session, [row.variant_id or ""]).get(row.variant_id or "")
        track = redemptions.tracking_of(session, [row.id])[row.id]
        return {"redemption": present.my_detail(row, prize, variant, track)}


@redemptions_blp.route("/my-redemptions/<redemption_id>/cancel")
class CancelMine(MethodView):
    @login_required
    @redemptions_blp.arguments(CancelSchema)
    @redemptions_blp.response(200, CancelledSchema)
    @redemptions_blp.alt_response(400, description="Not cancellable (a voucher, shipped) or past the window")
    @redemptions_blp.alt_response(404, description="Not one of the caller's redemptions")
    @redemptions_blp.alt_response(409, description="Cancelled or moved on by a concurrent request")
    @redemptions_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], redemption_id: str) -> dict[str, Any]:
        """Cancel a pending or processing product redemption within the cancellation window:
        coins come back as a fresh lot and the unit returns to stock, once."""
        user = current_user()
        session = request_session()
        outcome = flows.cancel_by_employee(session, _redeemer(user), redemption_id, body["reason"].strip())
        session.commit()
        return {
            "success": True,
            "message": "Redemption cancelled successfully",
            "coinsRefunded": outcome.coins_refunded,
            "newBalance": outcome.new_balance,
        }


# --- addresses ------------------------------------------------------------------------------------


def _address_values(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": body["name"],
        "street": body["street"],
        "number": body["number"],
        "complement": body.get("complement") or None,
        "neighborhood": body.get("neighborhood") or "",
        "city": body["city"],
        "state": body["state"],
        "zip_code": body["zipCode"],
        "country": body.get("country") or "BR",
        "phone": body.get("phone") or "",
        "is_default": bool(body.get("isDefault")),
    }


@addresses_blp.route("")
class Addresses(MethodView):
    @login_required
    @addresses_blp.response(200, AddressesSchema)
    @addresses_blp.doc(security=BEARER)
    def get(self) -> dict[str, Any]:
        """The caller's addresses, the default first, then newest first."""
        user = current_user()
        return {
            "addresses": [present.address(a) for a in addresses.list_addresses(request_session(), user.id)]
        }

    @login_required
    @addresses_blp.arguments(AddressSchema)
    @addresses_blp.response(201, AddressSavedSchema)
    @addresses_blp.alt_response(400, description="Invalid fields, or already 3 addresses")
    @addresses_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Add an address (at most 3; the first becomes the default)."""
        user = current_user()
        session = request_session()
        address = addresses.create_address(session, user.id, user.company_id, _address_values(body))
        session.commit()
        return {"message": "Address created successfully", "address": present.address(address)}, 201


@addresses_blp.route("/<address_id>")
class AddressItem(MethodView):
    @login_required
    @addresses_blp.response(200, AddressEnvelopeSchema)
    @addresses_blp.alt_response(404, description="Not one of the caller's addresses")
    @addresses_blp.doc(security=BEARER)
    def get(self, address_id: str) -> dict[str, Any]:
        user = current_user()
        return {"address": present.address(addresses.get_address(request_session(), user.id, address_id))}

    @login_required
    @addresses_blp.arguments(AddressSchema)
    @addresses_blp.response(200, AddressSavedSchema)
    @addresses_blp.alt_response(404, description="Not one of the caller's addresses")
    @addresses_blp.doc(security=BEARER)
    def put(self, body: dict[str, Any], address_id: str) -> dict[str, Any]:
        """Replace an address's fields (whitelisted; open orders keep their own snapshot)."""
        user = current_user()
        session = request_session()
        address = addresses.update_address(session, user.id, address_id, _address_values(body))
        session.commit()
        return {"message": "Address updated successfully", "address": present.address(address)}

    @login_required
    @addresses_blp.response(200, MessageSchema)
    @addresses_blp.alt_response(404, description="Not one of the caller's addresses")
    @addresses_blp.doc(security=BEARER)
    def delete(self, address_id: str) -> dict[str, Any]:
        """Remove an address (the default passes to the next one)."""
        user = current_user()
        session = request_session()
        addresses.delete_address(session, user.id, address_id)
        session.commit()
        return {"message": "Address deleted successfully"}


@addresses_blp.route("/<address_id>/set-default")
class AddressDefault(MethodView):
    @login_required
    @addresses_blp.response(200, MessageSchema)
    @addresses_blp.alt_response(404, description="Not one of the caller's addresses")
    @addresses_blp.doc(security=BEARER)
    def post(self, address_id: str) -> dict[str, Any]:
        user = current_user()
        session = request_session()
        addresses.set_default(session, user.id, address_id)
        session.commit()
        return {"message": "Default address updated successfully"}


# --- public images --------------------------------------------------------------------------------


@public_images.route("/<string:prize_id>/<string:filename>", methods=["GET"])
@public_images.doc(
    responses={
        "200": {
            "description": "The image, cacheable forever (a new upload gets a new URL)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in images.SERVED_TYPES},
        }
    }
)
@public_images.alt_response(404, description="No such image, or no longer in the prize's images")
def prize_image(prize_id: str, filename: str) -> Response:
    """An uploaded prize image (no auth: the URL is what the prize's `images` lists)."""
    stored = images.find_public(request_session(), prize_id, filename)
    if stored is None:
        raise NotFound("Image not found")
    response = Response(stored.data, mimetype=stored.content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

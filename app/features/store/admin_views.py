"""Admin store routes (contract §S4, §S5): prizes and their images, the voucher catalogue,
redemptions (list, detail, metrics, status, tracking, notes, cancel) and voucher sends. Bare bodies
(the voucher catalogue adds `success`). Every id outside the caller's company answers 404."""

from __future__ import annotations

from functools import wraps
from typing import Any, TypeVar

import marshmallow as ma
from flask import request
from flask.views import MethodView
from werkzeug.exceptions import RequestEntityTooLarge

from app.api import BEARER, ApiError, Blueprint, cap_request_body, request_session
from app.auth import current_user, require_permission
from app.errors import Invalid
from app.features.store import catalogue, flows, images, metrics, present, redemptions, states
from app.features.store.schemas import (
    AdminCancelledSchema,
    AdminCancelSchema,
    AdminPrizeEnvelopeSchema,
    AdminPrizeQuerySchema,
    AdminPrizesSchema,
    AdminRedemptionDetailSchema,
    AdminRedemptionsQuerySchema,
    AdminRedemptionsSchema,
    BatchQueuedSchema,
    BulkRedeemSchema,
    MessageSchema,
    MetricsQuerySchema,
    NoteAddedSchema,
    NoteSchema,
    PrizeCreateSchema,
    PrizeImagesSchema,
    PrizeUpdateSchema,
    RedemptionMetricsSchema,
    SendToUserSchema,
    StatusSchema,
    StatusUpdatedSchema,
    SyncStartedSchema,
    TrackingSchema,
    TrackingSetSchema,
    VoucherProductEnvelopeSchema,
    VoucherProductQuerySchema,
    VoucherProductsSchema,
    VoucherSentSchema,
)
from app.jobs import enqueue

F = TypeVar("F")

prizes_blp = Blueprint("admin_prizes", __name__, url_prefix="/admin/prizes", description="Prizes (admin)")
vouchers_blp = Blueprint(
    "admin_voucher_products",
    __name__,
    url_prefix="/admin/voucher-products",
    description="Voucher catalogue (admin)",
)
redemptions_blp = Blueprint(
    "admin_redemptions", __name__, url_prefix="/admin/redemptions", description="Redemptions (admin)"
)

SYNC_KIND = "store.sync_voucher_catalogue"
BATCH_KIND = "store.dispatch_voucher_batch"

_JOB_LOCATION = {"Location": {"description": "/jobs/<job id>", "schema": {"type": "string"}}}
_IMAGES_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": images.MAX_IMAGES,
                        }
                    },
                }
            }
        },
    }
}


# --- prizes ---------------------------------------------------------------------------------------


@prizes_blp.route("")
class AdminPrizes(MethodView):
    @require_permission("prizes:read")
    @prizes_blp.arguments(AdminPrizeQuerySchema, location="query")
    @prizes_blp.response(200, AdminPrizesSchema)
    @prizes_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The company's prizes and the global ones (`isGlobal` narrows), filtered by `search`,
        `category`, `type` (voucher|product|produto), `isActive`; paginated by `offset` (or
        `page`) and `limit`. Answers `total` at the top level and in `pagination`."""
        user = current_user()
        limit = query["limit"]
        offset = query.get("offset")
        if offset is None:
            offset = (query.get("page", 1) - 1) * limit
        q = catalogue.AdminPrizeQuery(
            limit=limit,
            offset=offset,
            search=(query.get("search") or "").strip() or None,
            category=(query.get("category") or "").strip() or None,
            type=query.get("type") or None,
            is_active=query.get("isActive"),
            is_global=query.get("isGlobal"),
            order_by=query["orderBy"],
            order=query["order"],
        )
        rows, total = catalogue.admin_list(request_session(), user.company_id, q)
        page = offset // limit + 1
        return {
            "prizes": [present.admin_prize(p) for p in rows],
            "total": total,
            "pagination": {"total": total, "page": page, "limit": limit, "totalPages": -(-total // limit)},
        }

    @require_permission("prizes:create")
    @prizes_blp.arguments(PrizeCreateSchema)
    @prizes_blp.response(201, AdminPrizeEnvelopeSchema)
    @prizes_blp.alt_response(400, description="Invalid fields, type or voucher product")
    @prizes_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Create a company prize (`isGlobal` needs prizes:create_global). `type` accepts `produto`;
        `voucherProductId` links a voucher prize to a provider product so it can be redeemed."""
        user = current_user()
        session = request_session()
        data = PrizeCreateSchema().to_service(body)
        prize = catalogue.create_prize(
            session, user.company_id, data, may_create_global=user.can("prizes:create_global")
        )
        session.commit()
        return {"prize": present.admin_prize(prize)}, 201


@prizes_blp.route("/<prize_id>")
class AdminPrize(MethodView):
    @require_permission("prizes:read")
    @prizes_blp.response(200, AdminPrizeEnvelopeSchema)
    @prizes_blp.alt_response(404, description="Not the company's nor a global prize")
    @prizes_blp.doc(security=BEARER)
    def get(self, prize_id: str) -> dict[str, Any]:
        user = current_user()
        prize = catalogue.visible_prize(request_session(), user.company_id, prize_id, active_only=False)
        return {"prize": present.admin_prize(prize)}

    @require_permission("prizes:update")
    @prizes_blp.arguments(PrizeUpdateSchema)
    @prizes_blp.response(200, AdminPrizeEnvelopeSchema)
    @prizes_blp.alt_response(400, description="Invalid fields or type")
    @prizes_blp.alt_response(404, description="Not a company-owned prize")
    @prizes_blp.alt_response(409, description="A prize linked to a voucher product stays a voucher")
    @prizes_blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], prize_id: str) -> dict[str, Any]:
        """Edit a company-owned prize (global ones: 404)."""
        user = current_user()
        session = request_session()
        prize = catalogue.update_prize(
            session, user.company_id, prize_id, PrizeUpdateSchema().to_service(body)
        )
        session.commit()
        return {"prize": present.admin_prize(prize)}

    @require_permission("prizes:delete")
    @prizes_blp.response(200, MessageSchema)
    @prizes_blp.alt_response(404, description="Not a company-owned prize")
    @prizes_blp.doc(security=BEARER)
    def delete(self, prize_id: str) -> dict[str, Any]:
        """Soft delete (deactivate) a company-owned prize."""
        user = current_user()
        session = request_session()
        catalogue.deactivate_prize(session, user.company_id, prize_id)
        session.commit()
        return {"message": "Prize deleted successfully"}


def _too_large() -> ApiError:
    return ApiError(
        400, f"The upload is too large: at most {images.MAX_IMAGES} images of 5 MB", "FILE_TOO_LARGE"
    )


def _limit_body(view: F) -> F:
    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cap_request_body(images.MAX_REQUEST_BYTES, _too_large())
        try:
            return view(*args, **kwargs)  # type: ignore[operator]
        except RequestEntityTooLarge:
            raise _too_large() from None

    return wrapper  # type: ignore[return-value]


@prizes_blp.route("/<prize_id>/images")
class AdminPrizeImages(MethodView):
    @require_permission("prizes:manage_images")
    @_limit_body
    @prizes_blp.response(200, PrizeImagesSchema)
    @prizes_blp.alt_response(400, description="No file, too many, too large, or not JPEG/PNG/WebP")
    @prizes_blp.alt_response(404, description="Not a company-owned prize")
    @prizes_blp.doc(security=BEARER, **_IMAGES_UPLOAD)
    def post(self, prize_id: str) -> dict[str, Any]:
        """Upload up to 4 images (multipart, field `images`; JPEG, PNG or WebP, 5 MB each, 4 per
        prize in total). All are checked before any is stored."""
        user = current_user()
        session = request_session()
        catalogue.own_prize(session, user.company_id, prize_id)  # 404 before reading the files
        uploads = images.read_uploads(request.files)
        stored = images.add_images(session, user.company_id, prize_id, uploads, request.url_root)
        session.commit()
        return {
            "success": True,
            "images": stored,
            "message": f"{len(uploads)} image(s) uploaded successfully",
        }


@prizes_blp.route("/<prize_id>/images/<int(signed=True):image_index>")
class AdminPrizeImage(MethodView):
    @require_permission("prizes:manage_images")
    @prizes_blp.response(200, PrizeImagesSchema)
    @prizes_blp.alt_response(400, description="No image at that index")
    @prizes_blp.alt_response(404, description="Not a company-owned prize")
    @prizes_blp.doc(security=BEARER)
    def delete(self, prize_id: str, image_index: int) -> dict[str, Any]:
        """Remove the image at a 0-based index."""
        user = current_user()
        session = request_session()
        remaining = images.remove_image(session, user.company_id, prize_id, image_index)
        session.commit()
        return {"success": True, "images": remaining, "message": "Image removed successfully"}


# --- voucher catalogue ---------------------------------------------------------------------------


@vouchers_blp.route("")
class VoucherProducts(MethodView):
    @require_permission("prizes:read")
    @vouchers_blp.arguments(VoucherProductQuerySchema, location="query")
    @vouchers_blp.response(200, VoucherProductsSchema)
    @vouchers_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Provider products (from the catalogue sync) with the id of their global prize."""
        session = request_session()
        rows, total = catalogue.list_voucher_products(
            session,
            provider=query.get("provider"),
            category=query.get("category"),
            currency=query.get("currency"),
            country=query.get("country"),
            is_active=query.get("isActive"),
            search=(query.get("search") or "").strip() or None,
            limit=query["limit"],
            offset=query["offset"],
        )
        prize_ids = catalogue.voucher_product_prizes(session, [p.id for p in rows])
        return {
            "success": True,
            "items": [present.voucher_product(p, prize_ids.get(p.id)) for p in rows],
            "total": total,
        }


@vouchers_blp.route("/sync")
class VoucherSync(MethodView):
    @require_permission("admin:manage_system")
    @vouchers_blp.response(202, SyncStartedSchema, headers=_JOB_LOCATION)
    @vouchers_blp.doc(security=BEARER)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Enqueue the catalogue sync (platform operators: the catalogue and its prizes are global).
        Answers 202 at once; the job's result (on /jobs/<id>) carries the counts."""
        user = current_user()
        session = request_session()
        job, _ = enqueue(session, SYNC_KIND, {}, company_id=user.company_id, requested_by=user.id)
        session.commit()
        return (
            {
                "success": True,
                "message": "Voucher catalogue sync started",
                "jobId": job.id,
                "job_id": job.id,
                "status": job.status,
                "result": {"synced": 0, "deactivated": 0, "total": 0},
            },
            202,
            {"Location": f"/jobs/{job.id}"},
        )


@vouchers_blp.route("/<product_id>")
class VoucherProduct(MethodView):
    @require_permission("prizes:read")
    @vouchers_blp.response(200, VoucherProductEnvelopeSchema)
    @vouchers_blp.alt_response(404, description="Unknown product")
    @vouchers_blp.doc(security=BEARER)
    def get(self, product_id: str) -> dict[str, Any]:
        session = request_session()
        product = catalogue.voucher_product(session, product_id)
        prize_id = catalogue.voucher_product_prizes(session, [product.id]).get(product.id)
        return {"success": True, "product": present.voucher_product(product, prize_id)}


# --- redemptions ---------------------------------------------------------------------------------


@redemptions_blp.route("")
class AdminRedemptions(MethodView):
    @require_permission("redemptions:view_all")
    @redemptions_blp.arguments(AdminRedemptionsQuerySchema, location="query")
    @redemptions_blp.response(200, AdminRedemptionsSchema)
    @redemptions_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The company's redemptions, newest first; `status` any case (`completed` = delivered),
        `type` voucher|physical|product, `search` on user, prize or id prefix."""
        user = current_user()
        session = request_session()
        raw_type = query.get("type") or query.get("prizeType")
        q = redemptions.AdminQuery(
            limit=query["limit"],
            offset=query["offset"],
            search=(query.get("search") or "").strip() or None,
            status=states.parse_status(query["status"]) if query.get("status") else None,
            type=catalogue.parse_type(raw_type) if raw_type else None,
        )
        rows, total = redemptions.list_company(session, user.company_id, q)
        users = redemptions.users_of(session, [r.user_id for r in rows])
        prizes = redemptions.prizes_of(session, [r.prize_id for r in rows])
        return {
            "data": [present.admin_item(r, users.get(r.user_id), prizes.get(r.prize_id)) for r in rows],
            "pagination": {
                "total": total,
                "limit": q.limit,
                "offset": q.offset,
                "pages": -(-total // q.limit),
                "hasMore": q.offset + q.limit < total,
            },
        }


@redemptions_blp.route("/metrics")
class RedemptionMetrics(MethodView):
    @require_permission("redemptions:view_all")
    @redemptions_blp.arguments(MetricsQuerySchema, location="query")
    @redemptions_blp.response(200, RedemptionMetricsSchema)
    @redemptions_blp.alt_response(400, description="startDate after endDate")
    @redemptions_blp.doc(security=BEARER)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Volume, status and type breakdowns, top prizes, engagement and cost over
        [startDate, endDate] (default: the last 30 days), compared with the period before."""
        user = current_user()
        return metrics.redemption_metrics(
            request_session(), user.company_id, query.get("startDate"), query.get("endDate")
        )


def _detail(session: Any, company_id: str, redemption_id: str) -> dict[str, Any]:
    row = redemptions.for_company(session, company_id, redemption_id)
    user = redemptions.users_of(session, [row.user_id]).get(row.user_id)
    prize = redemptions.prizes_of(session, [row.prize_id]).get(row.prize_id)
    variant = redemptions.variants_of(session, [row.variant_id or ""]).get(row.variant_id or "")
    voucher = redemptions.vouchers_of(session, [row.id]).get(row.id)
    track = redemptions.tracking_of(session, [row.id])[row.id]
    return present.admin_detail(row, user, prize, variant, voucher, track)


@redemptions_blp.route("/<redemption_id>")
class AdminRedemption(MethodView):
    @require_permission("redemptions:view_details")
    @redemptions_blp.response(200, AdminRedemptionDetailSchema)
    @redemptions_blp.alt_response(404, description="Not a redemption of the company")
    @redemptions_blp.doc(security=BEARER)
    def get(self, redemption_id: str) -> dict[str, Any]:
        """One redemption with its user, prize, address snapshot, voucher and history."""
        user = current_user()
        return _detail(request_session(), user.company_id, redemption_id)


@redemptions_blp.route("/<redemption_id>/status")
class AdminRedemptionStatus(MethodView):
    @require_permission("redemptions:update_status")
    @redemptions_blp.arguments(StatusSchema)
    @redemptions_blp.response(200, StatusUpdatedSchema)
    @redemptions_blp.alt_response(400, description="Unknown status")
    @redemptions_blp.alt_response(404, description="Not a redemption of the company")
    @redemptions_blp.alt_response(409, description="A voucher, or a move the state machine forbids")
    @redemptions_blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], redemption_id: str) -> dict[str, Any]:
        """Move a product redemption forward (pending → processing → shipped → delivered; any
        case, `completed` = delivered); `cancelled` cancels with refund and restock. Voucher
        statuses follow the provider (409), as does any move backwards."""
        user = current_user()
        session = request_session()
        flows.admin_set_status(
            session, user.company_id, user.id, redemption_id, body["status"], body.get("notes")
        )
        session.commit()
        return {
            "success": True,
            "message": "Redemption status updated successfully",
            "redemption": _detail(session, user.company_id, redemption_id),
        }


@redemptions_blp.route("/<redemption_id>/tracking")
class AdminRedemptionTracking(MethodView):
    @require_permission("redemptions:update_status")
    @redemptions_blp.arguments(TrackingSchema)
    @redemptions_blp.response(200, TrackingSetSchema)
    @redemptions_blp.alt_response(404, description="Not a redemption of the company")
    @redemptions_blp.alt_response(409, description="A voucher, or a cancelled or failed redemption")
    @redemptions_blp.doc(security=BEARER)
    def patch(self, body: dict[str, Any], redemption_id: str) -> dict[str, Any]:
        user = current_user()
        session = request_session()
        row = flows.set_tracking(
            session,
            user.company_id,
            user.id,
            redemption_id,
            body["trackingCode"].strip(),
            (body.get("carrier") or "").strip() or None,
            body.get("notes"),
        )
        session.commit()
        return {
            "message": "Tracking code added successfully",
            "redemptionId": row.id,
            "trackingCode": row.tracking_code,
            "carrier": row.tracking_carrier,
        }


@redemptions_blp.route("/<redemption_id>/notes")
class AdminRedemptionNotes(MethodView):
    @require_permission("redemptions:update_status")
    @redemptions_blp.arguments(NoteSchema)
    @redemptions_blp.response(200, NoteAddedSchema)
    @redemptions_blp.alt_response(404, description="Not a redemption of the company")
    @redemptions_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any], redemption_id: str) -> dict[str, Any]:
        user = current_user()
        session = request_session()
        row = flows.add_note(session, user.company_id, user.id, redemption_id, body["note"].strip())
        session.commit()
        return {
            "success": True,
            "message": "Note added successfully",
            "redemptionId": row.id,
            "note": body["note"],
        }


@redemptions_blp.route("/<redemption_id>/cancel")
class AdminRedemptionCancel(MethodView):
    @require_permission("redemptions:cancel")
    @redemptions_blp.response(200, AdminCancelledSchema)
    @redemptions_blp.alt_response(400, description="Not cancellable (a voucher, shipped), or a bad reason")
    @redemptions_blp.alt_response(404, description="Not a redemption of the company")
    @redemptions_blp.alt_response(409, description="Cancelled or moved on by a concurrent request")
    @redemptions_blp.doc(security=BEARER)
    def delete(self, redemption_id: str) -> dict[str, Any]:
        """Cancel a pending or processing product redemption (JSON body on DELETE, optional
        `reason`): the payer is refunded once and the unit restocked."""
        try:
            body = AdminCancelSchema().load(request.get_json(silent=True) or {})
        except ma.ValidationError as exc:
            raise Invalid(
                "Invalid request: reason has at most 500 characters", details=exc.messages
            ) from None
        user = current_user()
        session = request_session()
        outcome = flows.cancel_by_admin(session, user.company_id, user.id, redemption_id, body.get("reason"))
        session.commit()
        budget = present.brl(outcome.budget_refunded_cents)
        return {
            "success": True,
            "message": "Redemption cancelled successfully",
            "redemptionId": redemption_id,
            "refundedCoins": outcome.coins_refunded,
            "coinsRefunded": outcome.coins_refunded,
            "refundedBudget": budget,
            "budgetRefunded": budget,
        }


@redemptions_blp.route("/send-to-user")
class SendToUser(MethodView):
    @require_permission("vouchers:send_to_users")
    @redemptions_blp.arguments(SendToUserSchema)
    @redemptions_blp.response(202, VoucherSentSchema, headers=_JOB_LOCATION)
    @redemptions_blp.alt_response(400, description="Email mismatch, amount out of range, fund too low")
    @redemptions_blp.alt_response(404, description="Unknown user or voucher prize")
    @redemptions_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Send a voucher paid from the company's fund: the fund is debited and the redemption
        stored now (202), the voucher issued by a job (`jobId`, on /jobs/<id>)."""
        user = current_user()
        session = request_session()
        [sent] = flows.send_vouchers(
            session,
            user.company_id,
            user.id,
            body["prizeId"],
            body["customAmount"],
            [flows.Recipient(body["userId"], body["email"])],
        )
        session.commit()
        return (
            {
                "message": "Voucher sendo emitido para o email do usuário",
                "redemptionId": sent.redemption.id,
                "userId": sent.user.id,
                "email": sent.user.email,
                "prizeId": body["prizeId"],
                "customAmount": body["customAmount"],
                "status": sent.redemption.status,
                "notes": None,
                "jobId": sent.job_id,
            },
            202,
            {"Location": f"/jobs/{sent.job_id}"},
        )


@redemptions_blp.route("/bulk-redeem")
class BulkRedeem(MethodView):
    @require_permission("vouchers:send_to_users")
    @redemptions_blp.arguments(BulkRedeemSchema)
    @redemptions_blp.response(202, BatchQueuedSchema, headers=_JOB_LOCATION)
    @redemptions_blp.alt_response(400, description="A recipient, the amount or the fund refuses the batch")
    @redemptions_blp.alt_response(404, description="Unknown user or voucher prize")
    @redemptions_blp.doc(security=BEARER)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Send the same voucher to many users (`allUsersSelected` with `users: []` = every active
        user). The whole batch is validated and reserved from the fund at once (all or nothing);
        one issue job per recipient is then dispatched by the batch job `jobId`."""
        user = current_user()
        session = request_session()
        if body["allUsersSelected"] and not body["users"]:
            wanted = flows.active_recipients(session, user.company_id)
        else:
            wanted = [flows.Recipient(u["userId"], u["email"]) for u in body["users"]]
        sent = flows.send_vouchers(
            session,
            user.company_id,
            user.id,
            body["prizeId"],
            body["customAmount"],
            wanted,
            enqueue_jobs=False,
        )
        job, _ = enqueue(
            session,
            BATCH_KIND,
            {"redemption_ids": [s.redemption.id for s in sent]},
            company_id=user.company_id,
            requested_by=user.id,
        )
        session.commit()
        return (
            {
                "message": f"{len(sent)} voucher(s) queued",
                "summary": {"total": len(sent), "successful": 0, "failed": 0, "queued": len(sent)},
                "results": [
                    {
                        "userId": s.user.id,
                        "email": s.user.email,
                        "prizeId": body["prizeId"],
                        "success": True,
                        "redemptionId": s.redemption.id,
                    }
                    for s in sent
                ],
                "jobId": job.id,
            },
            202,
            {"Location": f"/jobs/{job.id}"},
        )

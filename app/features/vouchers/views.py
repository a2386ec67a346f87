"""POST /webhooks/tremendous: the provider's signed deliveries (public, no bearer token).

The signature is checked on the raw bytes; the delivery is stored and its apply job enqueued in one
transaction before we answer 200, so nothing acknowledged is ever lost, and a replay is stored and
applied once (`{"status": "already_processed"}`)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from app import runtime
from app.api import ApiError, Blueprint, cap_request_body, request_session
from app.features.vouchers import service
from app.features.vouchers.providers import TREMENDOUS
from app.features.vouchers.schemas import WebhookAckSchema
from app.jobs import enqueue

blp = Blueprint(
    "webhooks", __name__, url_prefix="/webhooks", description="Provider webhooks (public, signed)"
)

APPLY_KIND = "store.apply_voucher_event"


@blp.route("/tremendous")
class TremendousWebhook(MethodView):
    @blp.response(200, WebhookAckSchema, description="Stored (or a replay of a stored delivery)")
    @blp.alt_response(400, description="Not JSON, or no `event` / `uuid`")
    @blp.alt_response(401, description="Missing or wrong signature")
    @blp.alt_response(413, description="Body over 1 MiB")
    @blp.alt_response(503, description="TREMENDOUS_WEBHOOK_SECRET is not configured")
    def post(self) -> tuple[dict[str, Any], int]:
        """A Tremendous event, signed `Tremendous-Webhook-Signature: sha256=<hex>` (HMAC-SHA256 of
        the raw body with TREMENDOUS_WEBHOOK_SECRET). 401 on a missing or wrong signature, 503 when
        no secret is configured."""
        cap_request_body(service.MAX_WEBHOOK_BYTES, ApiError(413, "Webhook body too large"))
        body = request.get_data(cache=True)
        service.verify_signature(
            runtime.settings().tremendous_webhook_secret, body, request.headers.get(service.SIGNATURE_HEADER)
        )
        data = service.parse_event(body)
        session = request_session()
        event = service.record_event(session, TREMENDOUS, data)
        if event is None:
            return {"status": "already_processed"}, 200
        job, _ = enqueue(session, APPLY_KIND, {"event_id": event.id})
        event.apply_job_id = job.id
        session.commit()
        return {"status": "received"}, 200

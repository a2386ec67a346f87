"""/wallets: the caller's balances and ledger (bare bodies, contract §5)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api import Blueprint, request_session
from app.auth import current_user, login_required
from app.features.wallets import service
from app.features.wallets.schemas import TransactionPageSchema, TransactionQuerySchema, WalletBalanceSchema

blp = Blueprint("wallets", __name__, url_prefix="/wallets", description="Balances and the coin ledger")


@blp.route("/balance")
class Balance(MethodView):
    @login_required
    @blp.response(200, WalletBalanceSchema)
    def get(self) -> dict[str, Any]:
        """The caller's two balances and the redeemable coins about to expire."""
        user = current_user()
        session = request_session()
        wallet = service.get_wallet(session, user.id, user.company_id)
        expiring = service.expiring_coins(session, wallet.id)
        session.commit()  # keeps a wallet created on first sight
        return {
            "complimentBalance": wallet.compliment_balance,
            "redeemableBalance": wallet.redeemable_balance,
            "expiringCoins": {
                "next30Days": expiring.next30,
                "next90Days": expiring.next90,
                "urgentExpiration": expiring.urgent,
                "details": expiring.details,
            },
        }


@blp.route("/transactions")
class Transactions(MethodView):
    @login_required
    @blp.arguments(TransactionQuerySchema, location="query")
    @blp.response(200, TransactionPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The caller's ledger, newest first, filtered and paginated by limit/offset."""
        user = current_user()
        session = request_session()
        wallet = service.get_wallet(session, user.id, user.company_id)
        rows, total = service.list_transactions(
            session,
            wallet.id,
            limit=query["limit"],
            offset=query["offset"],
            balance_type=query.get("balanceType"),
            transaction_type=query.get("transactionType"),
            from_date=query.get("fromDate"),
            to_date=query.get("toDate"),
        )
        session.commit()
        return {
            "transactions": rows,
            "pagination": {
                "total": total,
                "limit": query["limit"],
                "offset": query["offset"],
                "hasMore": query["offset"] + query["limit"] < total,
            },
        }

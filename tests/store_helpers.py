"""Builders for prize-store tests: coins, addresses, prizes, vouchers, the provider swap, and the
check that every store answer is the one /openapi.json documents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import marshmallow as ma
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import db, runtime
from app.features.economy import service as economy
from app.features.store.models import (
    Address,
    Prize,
    PrizeVariant,
    Redemption,
    VoucherProduct,
    VoucherRedemption,
)
from app.features.wallets import service as wallets
from app.features.wallets.models import WalletTransaction
from tests.tremendous_fake import FakeTremendous

WEBHOOK_SECRET = "whsec-test-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def give_coins(user_id: str, company_id: str, coins: int) -> None:
    with db.session_scope() as session:
        wallet = wallets.lock_wallet_of(session, user_id, company_id)
        wallets.credit_redeemable(session, wallet, coins, "Test coins")


def redeemable(user_id: str) -> int:
    with db.session_scope() as session:
        return wallets.get_balances(session, user_id)[1]


def add_address(user_id: str, company_id: str, name: str = "Casa") -> str:
    with db.session_scope() as session:
        address = Address(
            user_id=user_id,
            company_id=company_id,
            name=name,
            street="Rua das Flores",
            number="10",
            neighborhood="Centro",
            city="São Paulo",
            state="SP",
            zip_code="01001000",
            country="BR",
            phone="11999998888",
            is_default=True,
        )
        session.add(address)
        session.flush()
        return address.id


def add_product(
    company_id: str | None,
    *,
    name: str = "Caneca Valorize",
    price: int = 100,
    stock: int = 10,
    category: str = "Casa",
    variants: list[tuple[str, str, int]] | None = None,
) -> str:
    with db.session_scope() as session:
        prize = Prize(
            company_id=company_id,
            name=name,
            description=f"{name}, um ótimo prêmio",
            type="product",
            category=category,
            brand="Valorize",
            coin_price=price,
            stock=stock,
            images=["https://img.example/p.png"],
            specifications={"Material": "Cerâmica"},
        )
        session.add(prize)
        session.flush()
        for vname, value, vstock in variants or []:
            session.add(PrizeVariant(prize_id=prize.id, name=vname, value=value, stock=vstock))
        return prize.id


def add_voucher(
    company_id: str | None,
    *,
    provider: str = "tremendous",
    external_id: str = "GIFT-IFOOD",
    price: int = 500,
    value_cents: int = 3000,
    stock: int = 999,
) -> tuple[str, str]:
    """(voucher product id, prize id)."""
    with db.session_scope() as session:
        product = session.scalars(
            select(VoucherProduct).where(
                VoucherProduct.provider == provider, VoucherProduct.external_id == external_id
            )
        ).first()
        if product is None:
            product = VoucherProduct(
                provider=provider,
                external_id=external_id,
                name=f"Vale {external_id}",
                description="Vale-presente",
                brand="iFood",
                images=[],
                min_value_cents=value_cents,
                max_value_cents=value_cents * 10,
                currency="BRL",
                countries=["BR"],
            )
            session.add(product)
            session.flush()
        prize = Prize(
            company_id=company_id,
            name=f"Vale {external_id}",
            description="Vale-presente digital",
            type="voucher",
            category="voucher",
            coin_price=price,
            stock=stock,
            voucher_product_id=product.id,
            voucher_value_cents=value_cents,
        )
        session.add(prize)
        session.flush()
        return product.id, prize.id


def deposit(company_id: str, cents: int) -> None:
    with db.session_scope() as session:
        economy.deposit(session, company_id, cents, "Test deposit", created_by=None)


def redemption(redemption_id: str) -> Redemption:
    with db.session_scope() as session:
        return session.get_one(Redemption, redemption_id)


def voucher(redemption_id: str) -> VoucherRedemption:
    with db.session_scope() as session:
        return session.scalars(
            select(VoucherRedemption).where(VoucherRedemption.redemption_id == redemption_id)
        ).one()


def movements(reference_prefix: str) -> list[WalletTransaction]:
    with db.session_scope() as session:
        return list(
            session.scalars(
                select(WalletTransaction)
                .where(WalletTransaction.reference.startswith(reference_prefix))
                .order_by(WalletTransaction.seq)
            )
        )


def stock_of(prize_id: str) -> int:
    with db.session_scope() as session:
        return session.get_one(Prize, prize_id).stock


def count(model: Any, *where: Any) -> int:
    with db.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@dataclass
class Provider:
    fake: FakeTremendous


@pytest.fixture
def tremendous(settings: Any) -> Iterator[FakeTremendous]:
    """The fake Tremendous, made the app's voucher provider (0.5 s client timeout)."""
    fake = FakeTremendous().start()
    runtime.init(
        replace(
            runtime.settings(),
            voucher_provider="tremendous",
            tremendous_api_key="test-key",
            tremendous_base_url=fake.url,
            tremendous_timeout_seconds=0.5,
            tremendous_webhook_secret=WEBHOOK_SECRET,
        )
    )
    yield fake
    fake.stop()
    runtime.init(settings)


@pytest.fixture
def webhook_secret(settings: Any) -> Iterator[str]:
    runtime.init(replace(runtime.settings(), tremendous_webhook_secret=WEBHOOK_SECRET))
    yield WEBHOOK_SECRET
    runtime.init(settings)


@pytest.fixture
def wide_pool(settings: Any) -> Iterator[None]:
    """A connection pool wide enough for 50 concurrent in-process requests: each holds its session's
    connection, and publishing its jobs after commit takes a second one for a moment."""
    separator = "&" if "?" in settings.database_url else "?"
    runtime.init(
        replace(
            runtime.settings(),
            database_url=settings.database_url + f"{separator}connect_timeout=10",
            db_pool_size=26,
        )
    )
    yield
    runtime.init(settings)


# The routes of the store, voucher and economy features, and the modules of their response schemas.
STORE_ROUTES = (
    "/prizes",
    "/redemptions",
    "/addresses",
    "/public/prize-images",
    "/admin/prizes",
    "/admin/voucher-products",
    "/admin/redemptions",
    "/admin/dashboard/economy",
    "/backoffice/companies",
    "/webhooks",
)
_SCHEMA_MODULES = ("app.features.store.", "app.features.economy.", "app.features.vouchers.")


@pytest.fixture
def documented(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every answer `client` gets from a store route matches what /openapi.json documents for it
    (status, content type, body schema), and every response schema of these features dumps the body
    its view built whole: a key it does not declare would be dropped from the answer. Yields the
    checked "METHOD path status" lines (a test can assert what was covered)."""
    document = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checked: list[str] = []
    dump = ma.Schema.dump

    def whole_dump(self: ma.Schema, obj: Any, *, many: bool | None = None) -> Any:
        result = dump(self, obj, many=many)
        if type(self).__module__.startswith(_SCHEMA_MODULES) and isinstance(obj, dict | list):
            assert result == obj, f"{type(self).__name__} changes the body: {obj!r} -> {result!r}"
        return result

    def open_and_check(*args: Any, **kwargs: Any) -> Any:
        response = FlaskClient.open(client, *args, **kwargs)
        method, path = response.request.method, response.request.path
        if path.startswith(STORE_ROUTES):
            operation = document.find_operation_by_path(method, path)
            assert operation is not None, f"{method} {path} is not in /openapi.json"
            operation.validate_response(response)
            checked.append(f"{method} {operation.path} {response.status_code}")
        return response

    monkeypatch.setattr(ma.Schema, "dump", whole_dump)
    monkeypatch.setattr(client, "open", open_and_check)
    yield checked

"""Voucher provider adapters: Tremendous (REST API v2) and a local demo adapter.

Every call's failure is classified for the issuing job (`store/issuing.py`):
- `Rejected`: the provider refused the request for good (4xx); nothing was created.
- `Retryable`: the request was not applied (connection refused, 429); the same call may work later.
- `Ambiguous`: the request may have been applied (timeout after sending, connection cut, 5xx):
  before any new create, the order must be looked up by its external id.

Orders carry `external_id` = the redemption id. Tremendous makes creation idempotent on it (a repeat
returns the first order) and lets an order be looked up by it; we still look it up ourselves before
re-creating after an ambiguous failure, so correctness never depends on the provider's dedupe.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from app import runtime

log = logging.getLogger(__name__)

TREMENDOUS = "tremendous"
LOCAL = "local"


class ProviderError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Rejected(ProviderError):
    """Refused for good; nothing was created."""


class Retryable(ProviderError):
    """Not applied; try again later."""


class Ambiguous(ProviderError):
    """May have been applied: look the order up before creating again."""


@dataclass(frozen=True)
class OrderRequest:
    external_id: str  # the redemption id
    product_id: str | None
    amount_cents: int
    currency: str
    recipient_name: str
    recipient_email: str
    campaign_id: str | None = None


@dataclass(frozen=True)
class ProviderOrder:
    order_id: str
    reward_id: str | None
    status: str  # the provider's order status (EXECUTED, FAILED, CANCELED, PENDING APPROVAL…)
    delivery_status: str | None = None  # SCHEDULED, PENDING, SUCCEEDED, FAILED
    external_id: str | None = None
    link: str | None = None
    code: str | None = None
    created_at: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("FAILED", "CANCELED") or self.delivery_status == "FAILED"

    @property
    def delivered(self) -> bool:
        return self.delivery_status == "SUCCEEDED"


@dataclass(frozen=True)
class ProviderProduct:
    external_id: str
    name: str
    description: str | None
    brand: str | None
    min_cents: int
    max_cents: int
    currency: str = "BRL"
    countries: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


class VoucherProvider(Protocol):
    name: str

    def create_order(self, request: OrderRequest) -> ProviderOrder: ...

    def find_order(self, external_id: str) -> ProviderOrder | None: ...

    def get_order(self, order_id: str) -> ProviderOrder | None: ...

    def list_orders(self, created_since: datetime) -> list[ProviderOrder]: ...

    def list_products(self) -> list[ProviderProduct]: ...


# --- Tremendous ----------------------------------------------------------------------------------


class TremendousProvider:
    """https://developers.tremendous.com — Bearer API key; amounts in BRL (not centavos)."""

    name = TREMENDOUS

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        funding_source_id: str = "balance",
        campaign_id: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.funding_source_id = funding_source_id
        self.campaign_id = campaign_id
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Retryable(f"Tremendous unreachable: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:
            raise Ambiguous(f"Tremendous API timeout after {self._client.timeout.read}s") from exc
        except httpx.TransportError as exc:
            raise Ambiguous(f"Tremendous connection failed: {type(exc).__name__}") from exc
        status = response.status_code
        if status < 400:
            return response
        message = _error_text(response)
        if status == 429:
            raise Retryable(f"Tremendous rate limit: {message}", status)
        if status >= 500 or status in (408, 409):
            raise Ambiguous(f"Tremendous error {status}: {message}", status)
        raise Rejected(f"Tremendous refused the request ({status}): {message}", status)

    def create_order(self, request: OrderRequest) -> ProviderOrder:
        reward: dict[str, Any] = {
            "value": {"denomination": request.amount_cents / 100, "currency_code": request.currency},
            "delivery": {"method": "EMAIL"},
            "recipient": {"name": request.recipient_name, "email": request.recipient_email},
        }
        if request.product_id:
            reward["products"] = [request.product_id]
        campaign = request.campaign_id or self.campaign_id
        if campaign:
            reward["campaign_id"] = campaign
        body = {
            "external_id": request.external_id,
            "payment": {"funding_source_id": self.funding_source_id},
            "reward": reward,
        }
        data = self._call("POST", "orders", json=body).json()
        return _order(data.get("order") or {})

    def find_order(self, external_id: str) -> ProviderOrder | None:
        data = self._call("GET", "orders", params={"external_id": external_id, "limit": 10}).json()
        for order in data.get("orders") or []:
            if order.get("external_id") == external_id:
                return _order(order)
        return None

    def get_order(self, order_id: str) -> ProviderOrder | None:
        try:
            data = self._call("GET", f"orders/{order_id}").json()
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        return _order(data.get("order") or {})

    def list_orders(self, created_since: datetime) -> list[ProviderOrder]:
        orders: list[ProviderOrder] = []
        offset = 0
        while True:
            data = self._call(
                "GET",
                "orders",
                params={"created_at[gte]": created_since.isoformat(), "limit": 100, "offset": offset},
            ).json()
            page = data.get("orders") or []
            orders += [_order(o) for o in page]
            if len(page) < 100:
                return orders
            offset += 100

    def list_products(self) -> list[ProviderProduct]:
        data = self._call("GET", "products", params={"country": "BR", "currency": "BRL"}).json()
        products = []
        for item in data.get("products") or []:
            product = _product(item)
            if product is not None:
                products.append(product)
        return products


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict) and errors.get("message"):
        return str(errors["message"])[:300]
    return str(body)[:300]


def _order(data: Mapping[str, Any]) -> ProviderOrder:
    if not data.get("id"):
        raise Ambiguous("Tremendous answered without an order id")
    rewards = data.get("rewards") or ([data["reward"]] if data.get("reward") else [])
    reward = rewards[0] if rewards else {}
    delivery = reward.get("delivery") or {}
    return ProviderOrder(
        order_id=str(data["id"]),
        reward_id=str(reward["id"]) if reward.get("id") else None,
        status=str(data.get("status") or "").upper(),
        delivery_status=(str(delivery["status"]).upper() if delivery.get("status") else None),
        external_id=data.get("external_id"),
        link=delivery.get("link") or None,
        created_at=data.get("created_at"),
    )


def _product(item: Mapping[str, Any]) -> ProviderProduct | None:
    """Products available in Brazil in BRL with a positive range on their first SKU."""
    currencies = [str(c).upper() for c in item.get("currency_codes") or []]
    countries = [
        str(c.get("abbr") if isinstance(c, dict) else c).upper() for c in item.get("countries") or []
    ]
    skus = item.get("skus") or []
    if "BRL" not in currencies or "BR" not in countries or not skus:
        return None
    try:
        low, high = round(float(skus[0]["min"]) * 100), round(float(skus[0]["max"]) * 100)
    except (KeyError, TypeError, ValueError):
        return None
    if low <= 0 or high < low:
        return None
    images = [str(i["src"]) for i in item.get("images") or [] if isinstance(i, dict) and i.get("src")]
    return ProviderProduct(
        external_id=str(item["id"]),
        name=str(item.get("name") or item["id"])[:200],
        description=item.get("description"),
        brand=(item.get("brand") or item.get("name") or None),
        min_cents=low,
        max_cents=high,
        currency="BRL",
        countries=countries,
        images=images,
    )


# --- local demo adapter --------------------------------------------------------------------------

DEMO_PRODUCTS = [
    ("LOCAL-IFOOD", "iFood", "Vale-refeição digital para pedir no app iFood.", 2500, 50000),
    ("LOCAL-UBER", "Uber", "Créditos para corridas e Uber Eats.", 2000, 30000),
    ("LOCAL-NETFLIX", "Netflix", "Cartão-presente para assinar ou renovar a Netflix.", 3500, 15000),
    ("LOCAL-AMAZON", "Amazon.com.br", "Vale-presente para compras na Amazon Brasil.", 2500, 100000),
    ("LOCAL-SPOTIFY", "Spotify", "Meses de Spotify Premium.", 1990, 11940),
]


class LocalProvider:
    """The embedded default (no provider configured): issues deterministic demo codes at once, so
    `scripts/run` shows the whole flow. Stateless: the same external id always yields the same order
    (idempotent like Tremendous), and every order reads as delivered."""

    name = LOCAL

    def create_order(self, request: OrderRequest) -> ProviderOrder:
        return self._order(request.external_id)

    def find_order(self, external_id: str) -> ProviderOrder | None:
        return None  # nothing to find: creating again yields the same order

    def get_order(self, order_id: str) -> ProviderOrder | None:
        prefix = "LOCAL-O-"
        return self._order(order_id[len(prefix) :]) if order_id.startswith(prefix) else None

    def list_orders(self, created_since: datetime) -> list[ProviderOrder]:
        return []

    def list_products(self) -> list[ProviderProduct]:
        return [
            ProviderProduct(
                external_id=ext,
                name=name,
                description=text,
                brand=name,
                min_cents=low,
                max_cents=high,
                countries=["BR"],
            )
            for ext, name, text, low, high in DEMO_PRODUCTS
        ]

    @staticmethod
    def _order(external_id: str) -> ProviderOrder:
        digest = hashlib.sha256(external_id.encode()).hexdigest().upper()
        code = f"DEMO-{digest[:4]}-{digest[4:8]}-{digest[8:12]}"
        return ProviderOrder(
            order_id=f"LOCAL-O-{external_id}",
            reward_id=f"LOCAL-R-{external_id}",
            status="EXECUTED",
            delivery_status="SUCCEEDED",
            external_id=external_id,
            code=code,
            link=None,
        )


_provider: VoucherProvider | None = None
_provider_key: tuple[Any, ...] | None = None


def provider() -> VoucherProvider:
    """The configured adapter (rebuilt when the settings change, e.g. between tests)."""
    global _provider, _provider_key
    s = runtime.settings()
    key = (s.voucher_provider, s.tremendous_api_key, s.tremendous_base_url, s.tremendous_timeout_seconds)
    if _provider is None or key != _provider_key:
        if s.voucher_provider == TREMENDOUS and s.tremendous_api_key:
            _provider = TremendousProvider(
                s.tremendous_api_key,
                s.tremendous_base_url,
                funding_source_id=s.tremendous_funding_source_id,
                campaign_id=s.tremendous_campaign_id,
                timeout=s.tremendous_timeout_seconds,
            )
        else:
            _provider = LocalProvider()
        _provider_key = key
    return _provider

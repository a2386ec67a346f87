"""Demo data for the prize store: the voucher catalogue (from the configured provider: the local
demo adapter by default), company products with variants, addresses, a funded company wallet and a
few redemptions in different states, all made through the store's own flows (so coins, stock and
ledgers are exactly what real use produces). Called by `seed.py` inside its transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.features.economy import service as economy
from app.features.identity import service as identity
from app.features.identity.models import User
from app.features.store import addresses, flows, sync
from app.features.store.models import Prize, PrizeVariant
from app.features.wallets import service as wallets

PRODUCTS = [
    # (name, description, category, brand, coins, stock, specifications, variants)
    (
        "Caneca Valorize",
        "Caneca de cerâmica de 350 ml com o logo da empresa.",
        "Casa",
        "Valorize",
        150,
        40,
        {"Material": "Cerâmica", "Capacidade": "350 ml"},
        [],
    ),
    (
        "Camiseta Valorize",
        "Camiseta de algodão orgânico.",
        "Vestuário",
        "Valorize",
        300,
        0,
        {"Material": "Algodão orgânico"},
        [("Tamanho", "P", 5), ("Tamanho", "M", 8), ("Tamanho", "G", 6)],
    ),
    (
        "Fone de ouvido Bluetooth",
        "Fone sem fio com cancelamento de ruído.",
        "Eletrônicos",
        "SoundMax",
        1800,
        5,
        {"Bateria": "30 h", "Conexão": "Bluetooth 5.3"},
        [],
    ),
    (
        "Mochila para notebook",
        "Mochila impermeável para notebooks de até 15,6 polegadas.",
        "Acessórios",
        "UrbanPack",
        900,
        12,
        {"Capacidade": "20 L"},
        [],
    ),
    (
        "Day off",
        "Um dia de folga para usar quando quiser (combinar com a liderança).",
        "Experiências",
        None,
        2500,
        20,
        None,
        [],
    ),
]

ADDRESS = {
    "name": "Casa",
    "street": "Avenida Paulista",
    "number": "1000",
    "complement": "Apto 42",
    "neighborhood": "Bela Vista",
    "city": "São Paulo",
    "state": "SP",
    "zip_code": "01310100",
    "country": "BR",
    "phone": "11987654321",
}


@dataclass
class StoreSeed:
    prizes: int = 0
    vouchers: int = 0
    redemptions: int = 0


def seed_store(session: Session, company_id: str, users: list[User], operator: User) -> StoreSeed:
    result = StoreSeed()
    result.vouchers = sync.sync_catalogue(session)["synced"]
    products: dict[str, Prize] = {}
    for name, description, category, brand, coins, stock, specs, variants in PRODUCTS:
        prize = Prize(
            company_id=company_id,
            name=name,
            description=description,
            type="product",
            category=category,
            brand=brand,
            coin_price=coins,
            stock=stock,
            specifications=specs,
            images=[],
        )
        session.add(prize)
        session.flush()
        for vname, value, vstock in variants:
            session.add(PrizeVariant(prize_id=prize.id, name=vname, value=value, stock=vstock))
        products[name] = prize
    session.flush()
    result.prizes = len(products)

    economy.deposit(
        session,
        company_id,
        500_000,
        "Depósito inicial do fundo de prêmios (demo)",
        created_by=operator.id,
        payment_method="PIX",
    )
    identity.set_plan(session, company_id, "PROFESSIONAL")

    shoppers = [u for u in users if u.id != operator.id][:4]
    redeemers = []
    for user in shoppers:
        wallet = wallets.lock_wallet_of(session, user.id, company_id)
        wallets.credit_redeemable(session, wallet, 3000, "Bônus de boas-vindas (demo)", {"demo": True})
        address = addresses.create_address(session, user.id, company_id, dict(ADDRESS))
        redeemers.append((flows.Redeemer(user.id, company_id, user.name, user.email), address.id))

    def redeem(index: int, prize: Prize, variant_id: str | None = None) -> str:
        who, address_id = redeemers[index]
        row, _ = flows.redeem(
            session,
            who,
            flows.RedeemRequest(prize.id, variant_id, None if prize.type == "voucher" else address_id),
        )
        result.redemptions += 1
        return row.id

    redeem(0, products["Caneca Valorize"])  # stays pending
    backpack = redeem(1, products["Mochila para notebook"])
    flows.admin_set_status(session, company_id, operator.id, backpack, "processing", "Separando o pedido")
    flows.set_tracking(session, company_id, operator.id, backpack, "BR123456789BR", "Correios", None)
    flows.admin_set_status(session, company_id, operator.id, backpack, "shipped", None)
    shirt_variant = (
        session.query(PrizeVariant)
        .filter(PrizeVariant.prize_id == products["Camiseta Valorize"].id, PrizeVariant.value == "M")
        .one()
    )
    shirt = redeem(2, products["Camiseta Valorize"], shirt_variant.id)
    flows.admin_set_status(session, company_id, operator.id, shirt, "delivered", "Entregue na recepção")
    headphones = redeem(3, products["Fone de ouvido Bluetooth"])
    flows.cancel_by_employee(session, redeemers[3][0], headphones, "Escolhi outro prêmio")
    vouchers = (
        session.query(Prize)
        .filter(Prize.company_id.is_(None), Prize.type == "voucher")
        .order_by(Prize.coin_price)
    )
    first_voucher = vouchers.first()
    if first_voucher is not None:
        redeem(0, first_voucher)  # issued by the worker (demo code from the local adapter)
    return result

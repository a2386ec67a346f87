"""Demo data: a living company (values, people, eight weeks of compliments, a prize store with
orders in several states, and an AI report of a beauty clinic's appointments for its operator),
built only through the services, so balances and the ledger are exactly what real use would have
produced.

Idempotent: the company is found by name; a second run creates nothing. A transaction-scoped
advisory lock makes two concurrent runs safe too.

Never in homolog/prod: every demo user has the published demo password. The demo's admin is a
Company Admin (not a platform operator), and the company's email domain is registered, so users
an admin adds to it pass the domain check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import runtime
from app.db import utcnow
from app.errors import DomainError, Forbidden
from app.features.auth.service import hash_password
from app.features.company.domains import add_initial_domains
from app.features.compliments import service as compliments
from app.features.demo.store_seed import seed_store
from app.features.identity import service as identity
from app.features.identity.catalogue import CREATOR_ROLE
from app.features.identity.models import Company, Department, JobTitle, User
from app.features.reports import service as reports
from app.features.users import onboarding
from app.features.values import service as values
from app.features.wallets import service as wallets

DEMO_COMPANY = "Valorize Demo"
DEMO_PASSWORD = "valorize-demo"
WEEKS = 8
WEEKLY_ALLOWANCE = 100

VALUES = [
    (
        "Inovação",
        "Buscamos novas formas de resolver problemas",
        "Propôs uma automação que poupou horas",
        "lightbulb",
        "#00D959",
    ),
    (
        "Colaboração",
        "Crescemos juntos, entre times",
        "Ajudou outro time a destravar uma entrega",
        "users-three",
        "#3B82F6",
    ),
    (
        "Excelência",
        "Fazemos bem feito, do começo ao fim",
        "Entregou com qualidade e no prazo",
        "trophy",
        "#F59E0B",
    ),
    (
        "Foco no cliente",
        "Cada decisão começa pelo cliente",
        "Resolveu um problema crítico de um cliente",
        "heart",
        "#EF4444",
    ),
    (
        "Integridade",
        "Transparência e respeito sempre",
        "Apontou um risco cedo e com clareza",
        "shield-check",
        "#8B5CF6",
    ),
    (
        "Aprendizado contínuo",
        "Compartilhamos o que aprendemos",
        "Organizou uma sessão de estudos",
        "book-open",
        "#14B8A6",
    ),
]

# (name, email local part, department, job title, role)
PEOPLE = [
    ("Ana Souza", "ana.souza", "Pessoas", "Head de Pessoas", CREATOR_ROLE),  # the demo's admin
    ("Bruno Lima", "bruno.lima", "Pessoas", "Analista de RH", "HR Manager"),
    ("Carla Mendes", "carla.mendes", "Engenharia", "Tech Lead", "Team Lead"),
    ("Diego Rocha", "diego.rocha", "Engenharia", "Engenheiro de Software", "Employee"),
    ("Eduarda Alves", "eduarda.alves", "Engenharia", "Engenheira de Software", "Employee"),
    ("Felipe Costa", "felipe.costa", "Engenharia", "Engenheiro de Dados", "Employee"),
    ("Gabriela Nunes", "gabriela.nunes", "Produto", "Gerente de Produto", "Team Lead"),
    ("Henrique Dias", "henrique.dias", "Produto", "Designer de Produto", "Employee"),
    ("Isabela Freitas", "isabela.freitas", "Comercial", "Executiva de Contas", "Employee"),
    ("João Pereira", "joao.pereira", "Comercial", "Customer Success", "Employee"),
    ("Larissa Gomes", "larissa.gomes", "Financeiro", "Analista Financeira", "Employee"),
    ("Marcelo Teixeira", "marcelo.teixeira", "Financeiro", "Controller", "Employee"),
]
EMAIL_DOMAIN = "valorize.demo"

MESSAGES = [
    "Obrigado pela ajuda com o deploy de sexta, salvou a semana!",
    "Sua apresentação para o cliente foi incrível, parabéns pelo preparo.",
    "Valeu por revisar meu código com tanto cuidado e paciência.",
    "A documentação que você escreveu vai ajudar o time inteiro.",
    "Muito obrigado por assumir o plantão quando eu precisei.",
    "Você trouxe uma ideia simples que resolveu um problema antigo.",
    "Parabéns pela condução da retrospectiva, foi muito produtiva.",
    "Obrigada por me ajudar no onboarding, fez toda a diferença.",
    "Excelente trabalho na análise dos dados do trimestre!",
    "Sua calma no incidente de ontem ajudou todo mundo a focar.",
    "Adorei a sessão de estudos que você organizou, aprendi muito.",
    "Obrigado por ouvir o cliente e trazer o feedback para o time.",
]


@dataclass
class SeedResult:
    created: bool
    company_id: str
    admin_email: str
    users: int = 0
    compliments: int = 0
    reports: int = 0
    passwords: bool = False
    notes: list[str] = field(default_factory=list)


def seed_demo(session: Session, *, now: datetime | None = None, password: str = DEMO_PASSWORD) -> SeedResult:
    """Create the demo company unless it exists. The caller commits. Forbidden in homolog/prod."""
    if runtime.settings().is_production:
        raise Forbidden(
            "The demo company is never seeded in homolog or prod: its users share a published password",
            "DEMO_SEED_REFUSED",
        )
    moment = now or utcnow()
    admin_email = f"{PEOPLE[0][1]}@{EMAIL_DOMAIN}"
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('valorize:seed-demo'))"))
    existing = session.scalar(select(Company.id).where(Company.name == DEMO_COMPANY))
    if existing is not None:
        return SeedResult(created=False, company_id=existing, admin_email=admin_email)

    start = (moment - timedelta(weeks=WEEKS)).replace(hour=9, minute=0, second=0, microsecond=0)
    company = Company(name=DEMO_COMPANY, created_at=start)
    session.add(company)
    session.flush()
    identity.create_default_roles(session, company)
    add_initial_domains(session, company.id, [EMAIL_DOMAIN])
    result = SeedResult(created=True, company_id=company.id, admin_email=admin_email)

    for title, description, example, icon, color in VALUES:
        values.create_value(
            session,
            company.id,
            {
                "title": title,
                "description": description,
                "example": example,
                "icon_name": icon,
                "icon_color": color,
            },
        )
    value_ids = [v.id for v in values.list_values(session, company.id, active_only=True)]

    departments: dict[str, Department] = {}
    job_titles: dict[str, JobTitle] = {}
    result.passwords = True
    users: list[User] = []
    for name, local, department_name, job_title_name, role in PEOPLE:
        if department_name not in departments:
            departments[department_name] = Department(company_id=company.id, name=department_name)
            session.add(departments[department_name])
            session.flush()
        if job_title_name not in job_titles:
            job_titles[job_title_name] = JobTitle(
                company_id=company.id, name=job_title_name, department_id=departments[department_name].id
            )
            session.add(job_titles[job_title_name])
            session.flush()
        user = onboarding.create_user(
            session,
            company.id,
            f"{local}@{EMAIL_DOMAIN}",
            name,
            role=role,
            department_id=departments[department_name].id,
            job_title_id=job_titles[job_title_name].id,
            password_hash=hash_password(password),
            now=start,
        )
        user.created_at = start
        users.append(user)
    result.users = len(users)

    rng = random.Random(20250101)  # the same demo every time
    for week in range(WEEKS + 1):
        week_start = start + timedelta(weeks=week)
        if week_start > moment:
            break
        if week:
            for user in users:
                wallet = wallets.lock_wallet_of(session, user.id, company.id)
                wallets.reset_compliment_balance(
                    session, wallet, WEEKLY_ALLOWANCE, "Weekly reset", {"demo": True}, week_start
                )
        week_end = min(week_start + timedelta(weeks=1), moment - timedelta(minutes=5))
        span = int((week_end - week_start).total_seconds())
        if span <= 0:
            continue
        times = sorted(week_start + timedelta(seconds=rng.randrange(span)) for _ in range(rng.randint(6, 10)))
        for when in times:
            sender, receiver = rng.sample(users, 2)
            try:
                with session.begin_nested():
                    compliments.send_compliment(
                        session,
                        company_id=company.id,
                        sender_id=sender.id,
                        receiver_id=receiver.id,
                        value_id=rng.choice(value_ids),
                        coins=rng.choice([5, 10, 10, 15, 20, 25]),
                        message=rng.choice(MESSAGES),
                        now=when,
                    )
                result.compliments += 1
            except DomainError:  # the sender's allowance ran out this week: skip, as the UI does
                continue
    session.flush()
    admin = users[0]
    reports.save_profile(
        session,
        reports.Caller(admin.id, company.id, admin.email),
        {
            "niche_bussiness": "Estética",
            "goal": {"selected": ["Aumentar faturamento"], "other": None},
            "analysis_period": "últimos 6 meses",
            "info_priority": ["faturamento", "procedimentos"],
            "best_data_format": "graficos",
        },
    )
    reports.create_example(
        session, reports.Caller(admin.id, company.id, admin.email), DEMO_DATASET_NAME, demo_dataset(moment)
    )
    result.reports = 1
    store = seed_store(session, company.id, users, users[0])
    result.notes.append(
        f"store: {store.prizes} products, {store.vouchers} vouchers, {store.redemptions} redemptions, "
        "R$ 5.000,00 in the prize fund, plan PROFESSIONAL"
    )
    session.flush()
    return result


DEMO_DATASET_NAME = "atendimentos-clinica.csv"
PROCEDURES = [
    ("Limpeza de pele", 180),
    ("Massagem", 150),
    ("Peeling", 320),
    ("Botox", 1200),
    ("Depilação", 90),
]


def demo_dataset(moment: datetime, rows: int = 240) -> bytes:
    """Six months of a beauty clinic's appointments (pt-BR CSV: `;`, dd/mm/yyyy, 1.234,56)."""
    rng = random.Random(20250202)
    lines = ["Data;Procedimento;Profissional;Valor;Pagamento"]
    for _ in range(rows):
        day = moment - timedelta(days=rng.randrange(180))
        name, price = rng.choice(PROCEDURES)
        value = price * rng.uniform(0.9, 1.1)
        amount = f"{value:,.2f}".replace(",", "§").replace(".", ",").replace("§", ".")
        lines.append(
            f"{day:%d/%m/%Y};{name};{rng.choice(['Bia', 'Carla', 'Duda'])};{amount};"
            f"{rng.choice(['Pix', 'Cartão', 'Dinheiro'])}"
        )
    return ("\n".join(lines) + "\n").encode()

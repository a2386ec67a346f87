"""`flask seed-demo` / `seed-local`: a living demo company, built through the services, once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import db
from app.features.compliments.models import Compliment
from app.features.identity.models import Company, User
from app.features.values.models import CompanyValue
from app.features.wallets.models import Wallet, WalletTransaction
from tests.recognition_helpers import assert_ledger_consistent


def _counts() -> dict[str, int]:
    with db.session_scope() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Company, User, Wallet, WalletTransaction, CompanyValue, Compliment)
        }


@pytest.mark.slow
def test_seed_demo_is_idempotent_and_consistent(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "users=12" in first.output
    counts = _counts()
    assert counts["companies"] == 1 and counts["users"] == 12 and counts["wallets"] == 12
    assert counts["company_values"] == 6
    assert counts["compliments"] >= 40

    again = runner.invoke(args=["seed-local"])
    assert again.exit_code == 0, again.output
    assert "nothing created" in again.output
    assert _counts() == counts
    assert_ledger_consistent()

    with db.session_scope() as session:
        span = session.execute(select(func.min(Compliment.created_at), func.max(Compliment.created_at))).one()
        assert (span[1] - span[0]).days >= 42  # spread over the weeks
        assert session.scalar(select(func.count()).where(User.password_hash.is_not(None))) == 12
        assert session.scalar(select(func.count()).where(User.department_id.is_(None))) == 0

    login = client.post("/auth/login", json={"email": "ana.souza@valorize.demo", "password": "valorize-demo"})
    assert login.status_code == 200, login.json
    token = login.json["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    feed = client.get("/compliments/feed", headers=headers).json
    assert len(feed) == 10 and all(item["sender"]["department"] for item in feed)
    assert client.get("/admin/company/values", headers=headers).status_code == 200
    # The AI reports half: a parsed dataset and a finished local-analyst report in Ana's library.
    assert "reports=1" in first.output
    [report] = client.get("/api/library", headers=headers).json["reports"]
    assert report["status"] == "done" and report["datasets"] == {"filename": "atendimentos-clinica.csv"}
    view = client.get(f"/api/report/view?id={report['id']}", headers=headers).json
    assert (
        view["ai_response"]["meta"]["generated_by"] == "local-analyst" and view["dataset"]["row_count"] == 240
    )
    assert client.get("/api/bussiness_info/status", headers=headers).json == {"exists": True}

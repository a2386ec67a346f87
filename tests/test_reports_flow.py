"""AI reports end to end: HTTP routes, a real RQ worker (in process), real Postgres and Redis, and
a local server that speaks the OpenAI chat-completions API (tests/openai_fake.py)."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from email.header import decode_header, make_header

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select, update

from app import db, runtime
from app.features.emails import ratelimit
from app.features.reports.models import Dataset, DatasetFile, Report, ReportDeletion, ReportVersion
from app.features.reports.output_schema import CHART_TYPES, REPORT_SCHEMA
from app.jobs.models import Job
from app.jobs.publish import push_to_rq
from app.jobs.rq_plumbing import queue
from app.logging import json_handler
from tests.conftest import start_worker_process, wait_for
from tests.email_helpers import smtp_server  # noqa: F401  (fixture)
from tests.openai_fake import fake_openai  # noqa: F401  (fixture)
from tests.reports_helpers import pii_csv, simple_csv, upload


def _report(client, headers, dataset_id, **extra):
    created = client.post("/api/report", json={"dataset_id": dataset_id, **extra}, headers=headers)
    assert created.status_code == 202, created.json
    if created.json["job_id"]:  # none yet while the dataset's file is being read (the parse starts it)
        assert created.headers["Location"] == f"/jobs/{created.json['job_id']}"
    return created.json["request_id"]


def _status(client, headers, report_id):
    return client.get(f"/api/report/status?id={report_id}", headers=headers).json


def _count(model) -> int:
    with db.session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_whole_flow_through_http_a_worker_and_an_openai_compatible_server(
    client,
    make_tenant,
    worker,
    fake_openai,  # noqa: F811
):
    tenant = make_tenant()
    headers = tenant.headers()
    data, seeded = pii_csv(60)

    dataset_id, put = upload(client, headers, "vendas.csv", data)
    assert put.status_code == 202 and put.json["job_id"]
    status = client.get(f"/api/upload/status?id={dataset_id}", headers=headers).json
    assert status["status"] == "uploaded" and status["job_id"] == put.json["job_id"]
    assert client.get(f"/api/dataset/preview?id={dataset_id}", headers=headers).status_code == 409

    worker()
    status = client.get(f"/api/upload/status?id={dataset_id}", headers=headers).json
    assert status["status"] == "parsed", status
    assert status["row_count"] == 60 and status["error_message"] is None
    preview = client.get(f"/api/dataset/preview?id={dataset_id}", headers=headers).json
    types = {c["name"]: c["type"] for c in preview["columns"]}
    assert types["Data"] == "date" and types["Valor"] == "number" and types["Loja"] == "string"
    assert types["Email"] == "email" and types["Telefone"] == "phone"
    assert len(preview["sample"]) == 30 and preview["stats"]["row_count"] == 60

    mapped = client.post(
        "/api/dataset/save_mapping",
        json={"datasetId": dataset_id, "mappings": [{"name": "Loja", "type": "string", "is_index": True}]},
        headers=headers,
    )
    assert mapped.status_code == 200 and mapped.json["ok"] is True
    assert next(c for c in mapped.json["columns"] if c["name"] == "Loja")["is_index"] is True

    profile = client.post(
        "/api/bussiness_info",
        json={"niche_bussiness": "Estética", "goal": "Vender mais", "info_priority": "faturamento"},
        headers=headers,
    )
    assert profile.status_code == 201
    assert profile.json["bussiness_info"]["goal"] == {"selected": [], "other": "Vender mais"}
    assert client.get("/api/bussiness_info/status", headers=headers).json == {"exists": True}

    report_id = _report(client, headers, dataset_id, parameters={"foco": "lojas"})
    assert _status(client, headers, report_id)["status"] == "pending"
    worker()
    status = _status(client, headers, report_id)
    assert status["status"] == "done", status
    assert status["progress"] == 100 and status["attempts"] == 1 and status["pdf_url"] is None

    view = client.get(f"/api/report/view?id={report_id}", headers=headers).json
    document = view["ai_response"]
    assert not list(Draft202012Validator(REPORT_SCHEMA).iter_errors(document))
    assert {c["type"] for c in document["charts"]} <= set(CHART_TYPES)
    assert document["charts"][0]["type"] == "bar"  # "Bar" normalised
    assert document["insights"][0]["confidence"] == "high"  # "Alta" normalised
    assert document["meta"]["rows_sampled"] == 30 and document["meta"]["row_count"] == 60
    assert any("PII mascarados" in w for w in document["meta"]["warnings"])
    assert view["model"] == "fake-model" and view["usage"]["total_tokens"] == 150
    assert view["llm_latency_ms"] is not None and view["dataset"]["filename"] == "vendas.csv"
    assert (
        client.get(f"/api/report/ai_report?id={report_id}", headers=headers).json["ai_response"] == document
    )

    # What reached the model: system + user messages, JSON mode, the model from the settings, the
    # full-file aggregates, the profile and parameters, and none of the seeded personal data.
    [request_body] = fake_openai.requests
    assert request_body["model"] == "fake-model" and request_body["response_format"] == {
        "type": "json_object"
    }
    assert [m["role"] for m in request_body["messages"]] == ["system", "user"]
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-test-key"
    sent = fake_openai.bodies()
    assert "Estética" in sent and "lojas" in sent and "aggregates" in sent and "<CPF>" in sent
    for kind, values in seeded.items():
        leaked = [v for v in values if v in sent or v.replace(" ", "") in sent]
        assert not leaked, f"{kind} reached the model: {leaked[:3]}"

    # Both jobs are visible to their owner with their progress.
    job = client.get(f"/jobs/{status['job_id']}", headers=headers).json
    assert job["status"] == "succeeded" and job["progress"] == 100
    parse_job = client.get(f"/jobs/{put.json['job_id']}", headers=headers).json
    assert parse_job["status"] == "succeeded" and parse_job["kind"] == "reports.parse_dataset"

    # Regenerate keeps the previous result as a version.
    again = client.post("/api/report/regenerate_report", json={"id": report_id}, headers=headers)
    assert again.status_code == 202 and again.json["success"] is True and again.json["history_id"]
    assert client.post(f"/api/reports/{report_id}/regenerate", headers=headers).status_code == 409
    worker()
    assert _status(client, headers, report_id)["status"] == "done"
    versions = client.get(f"/api/reports/{report_id}/versions", headers=headers).json["versions"]
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["id"] == again.json["history_id"]

    library = client.get("/api/library", headers=headers).json
    assert library["pagination"] == {"total": 1, "limit": 500, "offset": 0, "hasMore": False}
    [item] = library["reports"]
    assert item["id"] == report_id and item["datasets"] == {"filename": "vendas.csv"}
    assert item["status"] == "done"
    dashboard = client.get("/api/dashboard", headers=headers).json
    assert dashboard["total_reports"] == 1 and dashboard["done_reports"] == 1
    assert dashboard["hours_saved"] == 1 and dashboard["success_rate"] == 100


def test_garbage_then_valid_json_is_done_after_one_repair_call(client, make_tenant, worker, fake_openai):  # noqa: F811
    tenant = make_tenant()
    dataset_id, _ = upload(client, tenant.headers(), "a.csv", simple_csv())
    worker()
    fake_openai.script = ["garbage", "valid"]
    report_id = _report(client, tenant.headers(), dataset_id)
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "done" and status["attempts"] == 1
    first, repair = fake_openai.requests
    assert repair["messages"][:2] == first["messages"]
    assert repair["messages"][2] == {"role": "assistant", "content": "Desculpe, não consigo ajudar com isso."}
    assert "não segue o formato" in repair["messages"][3]["content"]
    view = client.get(f"/api/reports/{report_id}", headers=tenant.headers()).json
    assert view["usage"]["total_tokens"] == 300  # both calls counted


def test_garbage_every_time_ends_failed_with_a_message(client, make_tenant, worker, fake_openai):  # noqa: F811
    tenant = make_tenant()
    dataset_id, _ = upload(client, tenant.headers(), "a.csv", simple_csv())
    worker()
    fake_openai.default = "invalid"
    report_id = _report(client, tenant.headers(), dataset_id)
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "failed", status
    assert status["error_code"] == "invalid_ai_output" and "Regenere" in status["error_message"]
    assert status["attempts"] == 3
    assert len(fake_openai.requests) == 6  # three attempts, each with one repair call
    assert "heatmap" in fake_openai.requests[1]["messages"][-1]["content"]  # the errors went back
    view = client.get(f"/api/report/view?id={report_id}", headers=tenant.headers()).json
    assert view["status"] == "failed" and view["ai_response"] is None and view["error_message"]
    assert client.get("/api/dashboard", headers=tenant.headers()).json["success_rate"] == 0


def test_timeouts_and_429_are_retried_then_fail_never_processing(client, make_tenant, worker, fake_openai):  # noqa: F811
    tenant = make_tenant()
    dataset_id, _ = upload(client, tenant.headers(), "a.csv", simple_csv())
    worker()
    for behaviour, code in (("timeout", "ai_timeout"), ("429", "ai_rate_limited"), ("500", "ai_unavailable")):
        fake_openai.requests.clear()
        fake_openai.default = behaviour
        report_id = _report(client, tenant.headers(), dataset_id)
        worker()
        status = _status(client, tenant.headers(), report_id)
        assert status["status"] == "failed" and status["error_code"] == code, status
        assert status["attempts"] == 3 and len(fake_openai.requests) == 3  # the SDK itself never retried
        assert "Tente regenerar" in status["error_message"]
        with db.session_scope() as session:
            job = session.get(Job, status["job_id"])
            assert job.status == "failed" and job.attempts == 3
    fake_openai.default = "valid"
    fake_openai.script = ["429"]
    report_id = _report(client, tenant.headers(), dataset_id)
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "done" and status["attempts"] == 2 and status["error_message"] is None


def test_a_rejected_key_fails_at_once(client, make_tenant, worker, fake_openai):  # noqa: F811
    tenant = make_tenant()
    dataset_id, _ = upload(client, tenant.headers(), "a.csv", simple_csv())
    worker()
    fake_openai.default = '{"never": "used"}'
    runtime.init(replace(runtime.settings(), openai_base_url=fake_openai.base_url + "/wrong"))
    report_id = _report(client, tenant.headers(), dataset_id)
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "failed" and status["error_code"] == "ai_config" and status["attempts"] == 1


def test_without_a_key_the_local_analyst_writes_a_valid_labelled_report(client, make_tenant, worker):
    assert runtime.settings().openai_api_key is None  # the embedded default
    tenant = make_tenant()
    dataset_id, _ = upload(client, tenant.headers(), "vendas.csv", pii_csv(40)[0])
    report_id = _report(client, tenant.headers(), dataset_id)  # asked while the file is being read
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "done", status
    view = client.get(f"/api/report/view?id={report_id}", headers=tenant.headers()).json
    document = view["ai_response"]
    assert not list(Draft202012Validator(REPORT_SCHEMA).iter_errors(document))
    assert document["meta"]["generated_by"] == "local-analyst" and view["model"] == "local-analyst"
    assert view["provider"] == "local" and view["usage"] is None
    assert {"bar", "pie", "line", "table"} <= {c["type"] for c in document["charts"]}
    assert "analista local" in document["summary"]


def test_the_chained_report_fails_with_its_invalid_dataset(client, make_tenant, worker):
    tenant = make_tenant()
    dataset_id, put = upload(client, tenant.headers(), "vazio.csv", b"a;b;c\n")
    assert put.status_code == 202
    created = client.post("/api/report", json={"dataset_id": dataset_id}, headers=tenant.headers())
    assert created.status_code == 202 and created.json["warning"] == "Dataset status is 'uploaded'"
    worker()
    status = client.get(f"/api/datasets/{dataset_id}/status", headers=tenant.headers()).json
    assert status["status"] == "invalid" and status["error_code"] == "empty_file"
    assert "linha de dados" in status["error_message"]
    report = _status(client, tenant.headers(), created.json["request_id"])
    assert report["status"] == "failed" and report["error_code"] == "dataset_invalid"
    again = client.post("/api/report", json={"dataset_id": dataset_id}, headers=tenant.headers())
    assert again.status_code == 409 and isinstance(again.json["error"], str)
    assert again.json["code"] == "dataset_invalid"


def test_bad_files_are_refused_or_invalid_and_nothing_is_half_stored(client, make_tenant, worker, settings):
    tenant = make_tenant()
    headers = tenant.headers()
    binary = bytes(range(256)) * 4
    for data, status_code, code in (
        (b"", 400, "empty_file"),
        (binary, 400, "unsupported_format"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, 400, "unsupported_format"),
    ):
        dataset_id, put = upload(client, headers, "dados.csv", data)
        assert put.status_code == status_code and put.json["code"] == code, put.json
        assert isinstance(put.json["error"], str) and put.json["message"] == put.json["error"]
        assert client.get(f"/api/upload/status?id={dataset_id}", headers=headers).json["job_id"] is None
    assert _count(DatasetFile) == 0 and _count(Job) == 0

    for name in ("planilha.xls", "foto.png", ""):
        refused = client.post("/api/upload/create", json={"filename": name}, headers=headers)
        assert refused.status_code == 400, name
    before = _count(Dataset)
    one_step = client.post(
        "/api/upload",
        data={"file": (io.BytesIO(binary), "x.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert one_step.status_code == 400 and _count(Dataset) == before  # no row at all

    runtime.init(replace(settings, dataset_max_bytes=1000))
    big = simple_csv(200)
    dataset_id, put = upload(client, headers, "grande.csv", big)
    assert put.status_code == 413 and put.json["code"] == "too_large"
    one_step = client.post(
        "/api/upload",
        data={"file": (io.BytesIO(big), "g.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert one_step.status_code == 413 and _count(Dataset) == before + 1 and _count(DatasetFile) == 0
    runtime.init(settings)

    # Files that look fine at the door but cannot be read end `invalid`, with a message.
    corrupt_id, put = upload(client, headers, "quebrado.xlsx", b"PK\x03\x04" + b"junk" * 100)
    assert put.status_code == 202
    worker()
    status = client.get(f"/api/upload/status?id={corrupt_id}", headers=headers).json
    assert status["status"] == "invalid" and "XLSX" in status["error_message"]
    with db.session_scope() as session:
        job = session.get(Job, status["job_id"])
        assert job.status == "failed" and job.attempts == 1  # permanent: not retried

    # The signed upload URL works once.
    created = client.post("/api/upload/create", json={"filename": "b.csv"}, headers=headers).json
    path = created["uploadUrl"].removeprefix(runtime.settings().public_api_url)
    assert client.put(path, data=simple_csv()).status_code == 202
    assert client.put(path, data=simple_csv()).status_code == 403
    assert client.put(path.replace("token=", "token=x"), data=simple_csv()).status_code == 403


def test_another_users_dataset_or_report_is_404_on_every_route(client, make_tenant, make_user, worker):
    owner = make_tenant()
    dataset_id, _ = upload(client, owner.headers(), "a.csv", simple_csv())
    worker()
    report_id = _report(client, owner.headers(), dataset_id)
    worker()
    assert _status(client, owner.headers(), report_id)["status"] == "done"
    _, colleague_token = make_user(owner.company_id)
    stranger = make_tenant("Other")
    routes = [
        ("get", f"/api/upload/status?id={dataset_id}", None),
        ("get", f"/api/datasets/{dataset_id}/status", None),
        ("get", f"/api/dataset/preview?id={dataset_id}", None),
        ("get", f"/api/datasets/{dataset_id}/preview", None),
        ("post", "/api/dataset/save_mapping", {"datasetId": dataset_id, "mappings": []}),
        ("put", f"/api/datasets/{dataset_id}/mapping", {"mappings": []}),
        ("post", f"/api/dataset/reparse?id={dataset_id}", None),
        ("put", f"/api/upload/{dataset_id}/content", None),
        ("get", f"/api/dataset/get_sample?report_request_id={report_id}", None),
        ("get", f"/api/reports/{report_id}/sample", None),
        ("post", "/api/report", {"dataset_id": dataset_id}),
        ("get", f"/api/report/status?id={report_id}", None),
        ("get", f"/api/reports/{report_id}/status", None),
        ("get", f"/api/report/ai_report?id={report_id}", None),
        ("get", f"/api/reports/{report_id}/ai", None),
        ("get", f"/api/report/view?id={report_id}", None),
        ("get", f"/api/reports/{report_id}", None),
        ("get", f"/api/reports/{report_id}/versions", None),
        ("post", "/api/report/regenerate_report", {"id": report_id}),
        ("post", f"/api/reports/{report_id}/regenerate", None),
        ("post", f"/api/report/send_email?id={report_id}", {}),
        ("post", f"/api/reports/{report_id}/email", {}),
        ("delete", f"/api/report/delete?id={report_id}", None),
        ("delete", f"/api/reports/{report_id}", None),
    ]
    for token in (colleague_token, stranger.admin_token):
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, body in routes:
            kwargs = {"json": body} if body is not None else {"data": b"x,y\n1,2\n"}
            answer = getattr(client, method)(path, headers=headers, **kwargs)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.json)
            assert isinstance(answer.json["error"], str)
        assert client.get("/api/library", headers=headers).json["reports"] == []
        assert client.get("/api/dashboard", headers=headers).json["total_reports"] == 0
    assert client.get(f"/api/dashboard?user_id={owner.admin_id}", headers=headers).status_code == 403
    assert client.get(f"/api/report/view?id={report_id}", headers=owner.headers()).json["status"] == "done"
    assert client.get("/api/library").status_code == 401


def test_delete_removes_the_dataset_only_when_unused_and_keeps_a_content_free_tombstone(
    client, make_tenant, worker
):
    tenant = make_tenant()
    headers = tenant.headers()
    dataset_id, _ = upload(client, headers, "a.csv", simple_csv())
    worker()
    first = _report(client, headers, dataset_id)
    second = _report(client, headers, dataset_id)
    worker()
    gone = client.delete(f"/api/report/delete?id={first}", headers=headers)
    assert gone.status_code == 200
    assert gone.json["deleted_id"] == first and gone.json["deleted_dataset_id"] is None
    assert _count(Dataset) == 1 and _count(DatasetFile) == 1
    gone = client.delete(f"/api/reports/{second}", headers=headers)
    assert gone.json["deleted_dataset_id"] == dataset_id and gone.json["history_id"]
    assert _count(Dataset) == 0 and _count(DatasetFile) == 0 and _count(Report) == 0
    assert _count(ReportVersion) == 0 and _count(Job) == 3  # the jobs stay, for audit
    with db.session_scope() as session:
        tombstones = session.scalars(select(ReportDeletion).order_by(ReportDeletion.deleted_at)).all()
        assert [t.report_id for t in tombstones] == [first, second]
        assert tombstones[1].dataset_deleted and tombstones[1].reason == "user_requested"
        for job in session.scalars(select(Job)):
            assert set(job.args) <= {"dataset_id", "report_id"}
            assert "summary" not in json.dumps(job.result or {})
    assert client.get(f"/api/report/status?id={second}", headers=headers).status_code == 404
    assert client.delete("/api/report/delete", headers=headers).json["error"] == "report id is required"


def _dona_report(client, make_tenant, worker) -> tuple[dict[str, str], str]:
    """Dona's headers and a report of hers whose generate job is queued (not run yet)."""
    headers = make_tenant(admin_email="dona@loja.com.br").headers()
    dataset_id, _ = upload(client, headers, "a.csv", simple_csv())
    worker()
    return headers, _report(client, headers, dataset_id)


def test_the_report_is_emailed_to_its_owner_only_as_escaped_html(
    client,
    make_tenant,
    worker,
    settings,
    smtp_server,  # noqa: F811
):
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=100_000))
    headers, report_id = _dona_report(client, make_tenant, worker)
    assert client.post(f"/api/report/send_email?id={report_id}", json={}, headers=headers).status_code == 409
    worker()
    refused = client.post(
        f"/api/report/send_email?id={report_id}", json={"to": "outro@x.com"}, headers=headers
    )
    assert refused.status_code == 403 and refused.json["code"] == "recipient_not_allowed"
    sent = client.post(
        f"/api/report/send_email?id={report_id}",
        json={"to": "DONA@loja.com.br", "message": "<script>alert(1)</script> veja"},
        headers=headers,
    )
    assert sent.status_code == 202 and sent.json["ok"] is True
    worker()
    [message] = smtp_server.messages
    assert (
        message.rcpt_tos == ["dona@loja.com.br"]
        and str(make_header(decode_header(message.message["Subject"]))) == "Seu relatório"
    )
    html = message.part("html")
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "Resumo" in html and "Categoria" in html and f"/reports/{report_id}" in html
    view = client.get(f"/api/report/view?id={report_id}", headers=headers).json
    assert view["sent_via_email"] is True


def test_a_report_email_over_the_rate_limit_defers_its_job_and_goes_out_when_the_window_turns(
    client,
    make_tenant,
    worker,
    settings,
    smtp_server,  # noqa: F811
):
    runtime.init(replace(settings, smtp_url=smtp_server.url, email_rate_per_minute=1))
    headers, report_id = _dona_report(client, make_tenant, worker)
    worker()
    with db.session_scope() as session:
        company_id = session.get_one(Report, report_id).company_id
    assert ratelimit.take(company_id, 1).granted == 1  # another send used the window
    sent = client.post(
        f"/api/report/send_email?id={report_id}", json={"to": "dona@loja.com.br"}, headers=headers
    )
    job_id = sent.json["job_id"]
    worker()
    with db.session_scope() as session:
        job = session.get_one(Job, job_id)
        assert (job.status, job.attempts, job.next_attempt_at is not None) == ("queued", 0, True)
        session.execute(update(Job).where(Job.id == job_id).values(next_attempt_at=func.now()))
    assert smtp_server.messages == []
    redis = runtime.redis()
    redis.delete(*redis.scan_iter("valorize:email-rate:*"))  # the window turns
    worker()
    with db.session_scope() as session:
        assert (session.get_one(Job, job_id).status, session.get_one(Job, job_id).attempts) == (
            "succeeded",
            1,
        )
    assert [m.rcpt_tos for m in smtp_server.messages] == [["dona@loja.com.br"]]


def test_job_logs_carry_dataset_and_report_ids_and_never_the_prompt(client, make_tenant, worker, fake_openai):  # noqa: F811
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        tenant = make_tenant()
        data, seeded = pii_csv(20)
        dataset_id, _ = upload(client, tenant.headers(), "a.csv", data)
        worker()
        report_id = _report(client, tenant.headers(), dataset_id)
        worker()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    parsed = next(line for line in lines if line["message"] == "dataset parsed")
    assert parsed["dataset_id"] == dataset_id and parsed["job_id"]
    call = next(line for line in lines if line["message"] == "llm call")
    assert call["report_id"] == report_id and call["dataset_id"] == dataset_id
    assert call["prompt_chars"] > 0 and len(call["prompt_sha256"]) == 64 and call["total_tokens"] == 150
    text = stream.getvalue()
    assert "Consultor de Intelig" not in text and "aggregates" not in text
    assert not any(v in text for values in seeded.values() for v in values)


def test_a_job_that_ends_without_writing_an_outcome_never_shows_processing(client, make_tenant, worker):
    tenant = make_tenant()
    headers = tenant.headers()
    dataset_id, _ = upload(client, headers, "a.csv", simple_csv())
    worker()
    lost, canceled, running = (_report(client, headers, dataset_id) for _ in range(3))
    jobs = {rid: _status(client, headers, rid)["job_id"] for rid in (lost, canceled, running)}
    with db.engine().begin() as conn:  # what the kernel writes when a job's worker died every time
        conn.execute(
            update(Job)
            .where(Job.id == jobs[lost])
            .values(
                status="failed", attempts=3, error="lost 3 time(s) while running (worker died); giving up"
            )
        )
        conn.execute(update(Job).where(Job.id == jobs[running]).values(status="started", attempts=1))
    assert client.post(f"/jobs/{jobs[canceled]}/cancel", headers=headers).status_code == 200
    status = _status(client, headers, lost)
    assert status["status"] == "failed" and status["error_code"] == "interrupted"
    assert "interrompido" in status["error_message"] and "Regenere" in status["error_message"]
    status = _status(client, headers, canceled)
    assert status["status"] == "failed" and "cancelada" in status["error_message"]
    assert _status(client, headers, running)["status"] == "processing"
    dashboard = client.get("/api/reports/dashboard", headers=headers).json
    assert (
        dashboard["total_reports"] == 3 and dashboard["done_reports"] == 0 and dashboard["success_rate"] == 0
    )
    statuses = {r["id"]: r["status"] for r in client.get("/api/reports", headers=headers).json["reports"]}
    assert statuses == {lost: "failed", canceled: "failed", running: "processing"}
    again = client.post(f"/api/reports/{lost}/regenerate", headers=headers)
    assert again.status_code == 202 and again.json["job_id"] != jobs[lost]
    worker()
    assert _status(client, headers, lost)["status"] == "done"


@pytest.mark.slow
def test_the_flow_with_a_worker_process(client, make_tenant, fake_openai):  # noqa: F811
    start_worker_process(
        OPENAI_API_KEY="sk-test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        AI_MODEL="fake-model",
        AI_TIMEOUT_SECONDS="10",
    )
    tenant = make_tenant()
    headers = tenant.headers()
    one_step = client.post(
        "/api/upload",
        data={"file": (io.BytesIO(pii_csv(30)[0]), "vendas.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert one_step.status_code == 202
    dataset_id = one_step.json["datasetId"]
    wait_for(
        lambda: client.get(f"/api/datasets/{dataset_id}/status", headers=headers).json["status"] == "parsed"
    )
    report_id = _report(client, headers, dataset_id)
    wait_for(lambda: _status(client, headers, report_id)["status"] == "done")
    [body] = fake_openai.requests
    assert body["model"] == "fake-model"
    view = client.get(f"/api/reports/{report_id}", headers=headers).json
    assert view["model"] == "fake-model" and view["provider"] == "127.0.0.1"


def test_profile_upsert_beta_leads_and_the_legacy_http_conventions(client, make_tenant, worker):
    tenant = make_tenant()
    headers = tenant.headers()
    assert client.get("/api/bussiness_info/status", headers=headers).json == {"exists": False}
    assert client.get("/api/business-info", headers=headers).status_code == 404
    empty = client.post("/api/bussiness_info", json={"goal": "  ", "niche_bussiness": ""}, headers=headers)
    assert empty.status_code == 400 and empty.json["error"] == "Payload inválido"
    created = client.post("/api/bussiness_info", json={"niche_bussiness": "Roupas"}, headers=headers)
    updated = client.put(
        "/api/business-info", json={"niche_bussiness": "Moda", "info_priority": ["vendas"]}, headers=headers
    )
    assert created.status_code == 201 and updated.status_code == 200
    assert updated.json["bussiness_info"]["id"] == created.json["bussiness_info"]["id"]
    assert (
        client.get("/api/business-info", headers=headers).json["bussiness_info"]["niche_bussiness"] == "Moda"
    )
    other = client.get("/api/bussiness_info/status?owner_id=someone-else", headers=headers)
    assert other.status_code == 403

    for _ in range(2):  # a repeat answers the same, and stores nothing new
        lead = client.post("/api/beta", json={"name": " Ana ", "email": "Ana@Example.com"})
        assert lead.status_code == 201 and lead.json == {"success": True}
    assert client.post("/api/beta-leads", json={"name": "Ana", "email": "nope"}).json["error"] == (
        "invalid email format"
    )
    assert client.post("/api/beta", json={"name": "Ana"}).json["error"] == "name and email are required"

    wrong_method = client.get("/api/upload/create", headers=headers)
    assert wrong_method.status_code == 405 and isinstance(wrong_method.json["error"], str)
    bad_json = client.post("/api/report", data="{oops", content_type="application/json", headers=headers)
    assert bad_json.status_code == 400 and bad_json.json["error"] == "Invalid JSON body"
    anonymous = client.get("/api/report/ai_report")  # the old route had no ownership check: now auth first
    assert anonymous.status_code == 401 and anonymous.json["error"] == "Missing bearer token"
    assert client.get("/api/report/ai_report", headers=headers).json["error"] == "Missing report id"
    assert client.get("/api/report/status?id=not-a-uuid", headers=headers).status_code == 404
    missing = client.post("/api/upload/create", json={"fileName": "ok.csv"}, headers=headers)
    assert missing.status_code == 200  # both spellings of the key

    dataset_id, _ = upload(client, headers, "a.csv", simple_csv())
    worker()
    keyed = {**headers, "Idempotency-Key": "abc"}
    first = client.post("/api/report", json={"dataset_id": dataset_id}, headers=keyed).json
    second = client.post("/api/report", json={"dataset_id": dataset_id}, headers=keyed).json
    assert first["request_id"] == second["request_id"] and _count(Report) == 1
    sample = client.get(
        f"/api/dataset/get_sample?reportRequestId={first['request_id']}", headers=headers
    ).json
    assert json.loads(sample["sample_json"]["sample_json"])["sample"] == sample["sample"]
    assert len(sample["sample"]) == 30


def test_a_report_asked_for_while_its_file_is_read_waits_and_is_done(client, make_tenant, worker):
    tenant = make_tenant()
    dataset_id, put = upload(client, tenant.headers(), "a.csv", simple_csv())
    report_id = _report(client, tenant.headers(), dataset_id)  # before the parse job ran
    report_job = _status(client, tenant.headers(), report_id)["job_id"]
    assert report_job  # it has its job from the start
    # The report job gets a worker first: it finds the file unread and waits (defers), no failure.
    runtime.redis().lrem(queue("reports", runtime.redis()).key, 0, put.json["job_id"])
    worker(max_jobs=1)
    with db.session_scope() as session:
        waiting = session.get_one(Job, report_job)
        assert (waiting.status, waiting.attempts) == ("queued", 0) and waiting.next_attempt_at is not None
    assert _status(client, tenant.headers(), report_id)["status"] == "pending"
    with db.session_scope() as session:
        push_to_rq([session.get_one(Job, put.json["job_id"])])  # now the file is read
    with db.engine().begin() as conn:  # and the wait is over
        conn.execute(update(Job).where(Job.id == report_job).values(next_attempt_at=func.now()))
    worker()
    assert _status(client, tenant.headers(), report_id)["status"] == "done"


def test_a_report_waiting_for_a_file_whose_parse_job_died_for_good_fails_never_pending(
    client, make_tenant, worker
):
    tenant = make_tenant()
    dataset_id, put = upload(client, tenant.headers(), "a.csv", simple_csv())
    report_id = _report(client, tenant.headers(), dataset_id)
    with db.engine().begin() as conn:  # what the kernel writes when the parse job's worker died every time
        conn.execute(
            update(Job)
            .where(Job.id == put.json["job_id"])
            .values(
                status="failed", attempts=3, error="lost 3 time(s) while running (worker died); giving up"
            )
        )
    worker()
    status = _status(client, tenant.headers(), report_id)
    assert status["status"] == "failed" and status["error_code"] == "dataset_invalid"
    assert "interrompido" in status["error_message"]

"""The baseline of bench/http_enqueue.py: the least a Flask route can do to accept slow work, an
INSERT of a row and `Queue.enqueue`, served the same way (gunicorn, same workers, same servers)."""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text

app = Flask(__name__)
_engine = create_engine(os.environ["BENCH_BASELINE_DATABASE_URL"], pool_size=5, max_overflow=5)
_queue = Queue(
    "bench-http-baseline", connection=Redis.from_url(os.environ["REDIS_URL"]), serializer=JSONSerializer
)


@app.post("/enqueue")
def enqueue() -> ResponseReturnValue:
    with _engine.begin() as conn:
        row_id = conn.execute(
            text("INSERT INTO bench_http_rows (payload) VALUES (:payload) RETURNING id"),
            {"payload": request.get_data(as_text=True)},
        ).scalar_one()
    job = _queue.enqueue("bench.noop_task.bare_noop", row_id)
    return jsonify({"job_id": job.id, "status": "queued"}), 202

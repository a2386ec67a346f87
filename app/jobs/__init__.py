"""The job kernel: a Postgres audit row per job, mirrored on RQ under the same id."""

from app.jobs.registry import JobContext, PermanentJobError, task
from app.jobs.service import enqueue

__all__ = ["JobContext", "PermanentJobError", "enqueue", "task"]

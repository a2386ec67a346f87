"""Scheduled tasks: one schedule declared in code, run one-shot (`cron.py run`) or by rq-scheduler."""

from app.cron.schedule import scheduled

__all__ = ["scheduled"]

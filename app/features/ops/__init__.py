"""Operator views over the platform's own machinery (scheduled task run history)."""

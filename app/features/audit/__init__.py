"""Audit log of admin mutations (who changed what, when), readable by super admins."""

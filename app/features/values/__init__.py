"""values feature."""

"""compliments feature."""

"""economy feature."""

"""store feature."""

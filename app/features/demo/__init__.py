"""demo feature."""

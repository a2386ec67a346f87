"""Admin roles and permissions (contract §8)."""

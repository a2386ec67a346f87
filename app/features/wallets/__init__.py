"""wallets feature."""

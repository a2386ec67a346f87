"""vouchers feature."""

"""LU-Net model package: torch + numpy only (no Qt)."""

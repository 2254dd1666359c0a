"""Issuer, holder and demo tools (not used by the kiosk)."""

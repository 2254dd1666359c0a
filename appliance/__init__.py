"""Offline verifier of signed licence QR codes for Raspberry Pi kiosks."""

__version__ = "0.1.0"

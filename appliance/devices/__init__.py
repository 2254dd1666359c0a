"""Adapters for hardware: frame sources, QR decoders, scanners, indicator."""

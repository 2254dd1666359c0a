"""Trust-data publishing and sync, audit upload, the receiving hub.

Imported as ``appliance_sync`` (docs/adr/0001-import-names.md).
"""

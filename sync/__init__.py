"""sync: trust-data publishing and sync, audit upload, the receiving hub (import name appliance_sync)."""

"""Login helpers shared by the device's screens (appliance_web) and the hub (appliance_hub).

Neither program may import the other (pyproject's import-linter contract), so the pieces
both need live here, with no kiosk, device or network dependency: the per-client login
delay (``throttle``), the same-origin ``next`` check (``redirects``) and the password-hash
check (``passwords``).
"""

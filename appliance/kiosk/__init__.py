"""The kiosk process: scan loop, verification service, port, bridge, composition."""

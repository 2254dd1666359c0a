"""The kiosk port: all the web screens know of the kiosk, and all the kiosk offers them.

``interface`` is the ``KioskPort`` protocol and the rules both sides apply (accepted types,
the public view of an event); ``events`` the live events (the bus, the verdict event);
``wire`` the kiosk socket's JSON-lines format. The kiosk implements and serves the port
(``appliance.kiosk.local_port``, ``appliance.kiosk.bridge``), the web holds a client of it
(``appliance_web.socket_port``); neither imports the other.
"""

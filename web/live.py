"""One upstream event subscription per web process, fanned out to its live screens.

Every open screen used to hold its own subscription to the kiosk, so each one held a
connection (and a thread) of the kiosk's bridge: 40 open ``/kiosk/events`` streams filled
the bridge and starved ``/healthz`` and verdicts. Here one reader thread holds the only
subscription and copies each event into every client's small queue (a slow client loses
its oldest events, never the reader); at most ``max_clients`` streams are served at once.

Idle clients cannot hold the slots (issue 21, finding 2: 16 idle ``/kiosk/events`` clients
took every slot and the kiosk display got 503 when it reconnected): a remote address holds
at most ``per_client`` streams and never the last slot, which is the display's; the display
(a client on ``127.0.0.1`` or ``::1``) is always served, ending the oldest stream when every
slot is taken (a remote one first). Streams send a keep-alive every ``keepalive_s``, so a
client whose socket stopped reading is dropped by the server's write timeout.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from appliance.port.events import Event
from appliance.port.interface import KioskPort
from appliance_web.errors import TooManyStreams

log = logging.getLogger(__name__)

QUEUE_SIZE = 32
PER_CLIENT = 4
DISPLAY_ADDRESSES = frozenset({"127.0.0.1", "::1"})
_ENDED = object()  # put in a queue to end its stream (the slot was given to the display)


class LiveFanout:
    """Live events of ``port`` for up to ``max_clients`` screens over one subscription."""

    def __init__(
        self,
        port: KioskPort,
        max_clients: int,
        keepalive_s: float = 15.0,
        per_client: int = PER_CLIENT,
    ) -> None:
        self._port = port
        self.max_clients = max(1, max_clients)
        self.keepalive_s = keepalive_s
        self.per_client = max(1, per_client)
        self._lock = threading.Lock()
        # Each client's queue and address, oldest first (dicts keep insertion order).
        self._clients: dict[queue.Queue[Any], str] = {}
        self.ended_for_display = 0
        self._reader: threading.Thread | None = None
        self._upstream: Iterator[Event | None] | None = None

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def _ensure_reader(self) -> None:
        """Subscribe now, in the caller's thread (no event after this call is missed), and
        read in the background. Called with the lock held."""
        if self._reader is not None and self._reader.is_alive():
            return
        self._upstream = self._port.events(self.keepalive_s)
        self._reader = threading.Thread(
            target=self._read, args=(self._upstream,), name="web-live-events", daemon=True
        )
        self._reader.start()

    def _read(self, upstream: Iterator[Event | None]) -> None:
        try:
            for event in upstream:
                if event is None:
                    continue
                with self._lock:
                    clients = list(self._clients)
                for q in clients:
                    _put_dropping_oldest(q, event)
        except Exception:
            log.exception("live events: the upstream subscription failed")
        finally:
            with contextlib.suppress(Exception):
                close = getattr(upstream, "close", None)
                if close is not None:
                    close()
            log.info("live events: upstream subscription ended")

    def subscribe(self, client: str = "") -> Subscription:
        """Events for one screen of ``client`` (its address), ``None`` after
        ``keepalive_s`` of quiet; raises ``TooManyStreams`` when the slots this client may
        take are taken. Registered at once; ``close()`` frees the slot (also when it was
        never read)."""
        q: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        display = client in DISPLAY_ADDRESSES
        with self._lock:
            if display:
                if len(self._clients) >= self.max_clients:
                    self._end_oldest()
            elif sum(1 for a in self._clients.values() if a == client) >= self.per_client:
                raise TooManyStreams(f"{self.per_client} live screens already open here")
            elif len(self._clients) >= self.max_clients - 1:  # the last slot: the display's
                raise TooManyStreams(f"{self.max_clients} live screens already open")
            self._ensure_reader()
            self._clients[q] = client
        return Subscription(self, q)

    def _end_oldest(self) -> None:
        """Give a slot to the display: end the oldest remote stream, else the oldest.
        Called with the lock held."""
        remote = [q for q, a in self._clients.items() if a not in DISPLAY_ADDRESSES]
        oldest = (remote or list(self._clients))[0]
        del self._clients[oldest]
        self.ended_for_display += 1
        log.info("live events: the oldest stream ended to serve the display")
        _put_dropping_oldest(oldest, _ENDED)

    def _leave(self, q: queue.Queue[Any]) -> None:
        with self._lock:
            self._clients.pop(q, None)


class Subscription:
    """One screen's iterator over live events; ``close()`` gives its slot back."""

    def __init__(self, fanout: LiveFanout, q: queue.Queue[Any]) -> None:
        self._fanout = fanout
        self._q = q
        self.closed = False

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> Event | None:
        if self.closed:
            raise StopIteration
        try:
            event = self._q.get(timeout=self._fanout.keepalive_s)
        except queue.Empty:
            return None
        if event is _ENDED:
            self.close()
            raise StopIteration
        return event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout._leave(self._q)


def _put_dropping_oldest(q: queue.Queue[Any], event: Any) -> None:
    try:
        q.put_nowait(event)
    except queue.Full:
        with contextlib.suppress(queue.Empty, queue.Full):
            q.get_nowait()
            q.put_nowait(event)

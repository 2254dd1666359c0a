"""One upstream event subscription per web process, fanned out to its live screens.

Every open screen used to hold its own subscription to the kiosk, so each one held a
connection (and a thread) of the kiosk's bridge: 40 open ``/kiosk/events`` streams filled
the bridge and starved ``/healthz`` and verdicts. Here one reader thread holds the only
subscription and copies each event into every client's small queue (a slow client loses
its oldest events, never the reader); at most ``max_clients`` streams are served at once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

from appliance.kiosk.events import Event
from appliance.kiosk.port import KioskPort

log = logging.getLogger(__name__)

QUEUE_SIZE = 32


class TooManyStreams(Exception):
    """Every stream slot is taken; the client should come back later."""


class LiveFanout:
    """Live events of ``port`` for up to ``max_clients`` screens over one subscription."""

    def __init__(self, port: KioskPort, max_clients: int, keepalive_s: float = 15.0) -> None:
        self._port = port
        self.max_clients = max(1, max_clients)
        self.keepalive_s = keepalive_s
        self._lock = threading.Lock()
        self._clients: set[queue.Queue[Event]] = set()
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
        self._reader = threading.Thread(target=self._read, args=(self._upstream,),
                                        name="web-live-events", daemon=True)
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

    def subscribe(self) -> Subscription:
        """Events for one screen, ``None`` after ``keepalive_s`` of quiet; raises
        ``TooManyStreams`` when every slot is taken. Registered at once; ``close()`` frees
        the slot (also when it was never read)."""
        q: queue.Queue[Event] = queue.Queue(QUEUE_SIZE)
        with self._lock:
            if len(self._clients) >= self.max_clients:
                raise TooManyStreams(f"{self.max_clients} live screens already open")
            self._ensure_reader()
            self._clients.add(q)
        return Subscription(self, q)

    def _leave(self, q: queue.Queue[Event]) -> None:
        with self._lock:
            self._clients.discard(q)


class Subscription:
    """One screen's iterator over live events; ``close()`` gives its slot back."""

    def __init__(self, fanout: LiveFanout, q: queue.Queue[Event]) -> None:
        self._fanout = fanout
        self._q = q
        self.closed = False

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> Event | None:
        if self.closed:
            raise StopIteration
        try:
            return self._q.get(timeout=self._fanout.keepalive_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout._leave(self._q)


def _put_dropping_oldest(q: queue.Queue[Any], event: Event) -> None:
    try:
        q.put_nowait(event)
    except queue.Full:
        with contextlib.suppress(queue.Empty, queue.Full):
            q.get_nowait()
            q.put_nowait(event)

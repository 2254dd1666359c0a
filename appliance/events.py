"""Live events from the kiosk loop to the screens (in-process; a Unix socket bridges processes).

Events are small dicts. A ``verdict`` event carries the screen view of a verdict; holder
details travel only in memory, never to disk or logs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

Event = dict[str, Any]


class EventBus:
    """Fan-out to any number of subscribers; a slow subscriber loses old events, not the bus."""

    def __init__(self, max_queued: int = 64) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Event]] = []
        self._max_queued = max_queued

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(event)
            except queue.Full:
                try:
                    q.get_nowait()
                    q.put_nowait(event)
                except (queue.Empty, queue.Full):
                    pass

    def subscribe(self, timeout_s: float = 15.0) -> Iterator[Event | None]:
        """Yield events as they come; ``None`` after ``timeout_s`` of quiet (for keep-alives)."""
        q: queue.Queue[Event] = queue.Queue(self._max_queued)
        with self._lock:
            self._subscribers.append(q)
        try:
            while True:
                try:
                    yield q.get(timeout=timeout_s)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                self._subscribers.remove(q)

"""Waking workers at once when work is queued, through Redis where it is configured.

The queue itself lives in the database (durable, transactional with the change that needs
the work); Redis only carries the "there is work" signal, so losing Redis costs latency (the
workers fall back to polling), never a job. Without ``ETMF_REDIS_URL`` workers poll.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etmf.bootstrap import Services

log = logging.getLogger("etmf.jobs")

CHANNEL = "etmf:work"


def _client(svc: Services) -> Any:
    client = svc.extras.get("redis")
    if client is None and svc.settings.redis_url:
        import redis

        client = svc.extras["redis"] = redis.Redis.from_url(
            svc.settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    return client


def notify_workers(svc: Services) -> None:
    """Tell waiting workers there is work; never fails the caller (they poll anyway)."""
    client = _client(svc)
    if client is None:
        return
    try:
        client.publish(CHANNEL, b"1")
    except Exception as exc:  # Redis down: workers still find the work when they poll
        log.warning("could not wake workers through Redis: %s", exc)


class Waiter:
    """Waits for a wake-up message, a stop request or the poll interval, whichever is first."""

    def __init__(self, svc: Services) -> None:
        self._pubsub = None
        client = _client(svc)
        if client is not None:
            try:
                self._pubsub = client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(CHANNEL)
            except Exception as exc:
                log.warning("Redis unreachable, polling instead: %s", exc)
                self._pubsub = None

    @property
    def polling(self) -> bool:
        """True when no Redis subscription is live (waits are plain timeouts)."""
        return self._pubsub is None

    def wait(self, stop: threading.Event, seconds: float) -> None:
        if self._pubsub is None:
            stop.wait(seconds)
            return
        try:
            # Short slices so a stop request is seen promptly.
            remaining = seconds
            while remaining > 0 and not stop.is_set():
                if self._pubsub.get_message(timeout=min(0.5, remaining)) is not None:
                    return
                remaining -= 0.5
        except Exception as exc:
            log.warning("lost Redis, polling instead: %s", exc)
            self._pubsub = None
            stop.wait(seconds)

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                log.debug("closing the Redis subscription", exc_info=True)

"""A first-come, first-served gate (``lib.db`` queues writers, and SQLite readers, here)."""

from __future__ import annotations

import threading
from collections import deque


class FairGate:
    """A semaphore that serves waiters first come, first served, and lets a thread that holds
    a slot enter again (a lib function opening its own transaction inside a caller's).

    A freed slot is handed to the longest waiter directly, so a colleague who just saved and
    saves again cannot overtake one who has been waiting (``threading.Semaphore`` allows that,
    which is how a few writers ended up waiting for many seconds).
    """

    def __init__(self, slots: int):
        self._lock = threading.Lock()
        self._free = slots
        self._waiters: deque[threading.Lock] = deque()
        self._held: dict[int, int] = {}  # thread id -> how many times it entered

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._lock:
            if me in self._held:
                self._held[me] += 1
                return True
            if self._free > 0 and not self._waiters:
                self._free -= 1
                self._held[me] = 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=max(0.0, timeout)):
            with self._lock:
                self._held[me] = 1  # release() handed its slot to us
            return True
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
            self._held[me] = 1
        self.release()  # the slot arrived just as we gave up: pass it on
        return False

    def held_here(self) -> bool:
        """Does the calling thread hold a slot?"""
        with self._lock:
            return threading.get_ident() in self._held

    def release(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._held.get(me, 0) > 1:
                self._held[me] -= 1
                return
            self._held.pop(me, None)
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1

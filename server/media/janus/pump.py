"""The thread that moves a Janus node's plain RTP: off the event loop, in bursts.

Every packet of every call crosses this node between a call's two NoSIP legs.
Handled on the event loop, each packet cost a selector wake-up, a protocol
callback and a transport call, and the loop is shared with signaling. Here one
thread per node waits on one ``epoll`` for all legs' sockets, drains every
ready socket, hands each packet to its leg's handler (forward to the other leg,
put video back into frames for the taps), then pauses :data:`PAUSE_S` before it
waits again. The pause is what makes the bursts: each wake-up drains a few
milliseconds of packets instead of one, and Janus's NoSIP threads, which read
what this node sends, wake once per burst too.

Frames for the taps are collected and given to the event loop once per
:data:`DELIVER_EVERY_S` in one ``call_soon_threadsafe`` for the whole node (the
taps' contract is that ``write`` runs on the loop). The collection is bounded
by :data:`MAX_PENDING_FRAMES`: past it the oldest frames are dropped and
counted, so a stalled loop costs the recording frames, never the call its
forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

from signaling.media.tap import EncodedFrame, MediaTap

__all__ = ["DELIVER_EVERY_S", "MAX_PENDING_FRAMES", "PAUSE_S", "RtpPump"]

log = structlog.get_logger(__name__)

PAUSE_S = 0.004
"""Pause after each burst: at most this much added latency per hop, in exchange
for one wake-up per burst instead of per packet."""
DELIVER_EVERY_S = 0.05
MAX_PENDING_FRAMES = 20_000
_WAIT_S = 0.5  # the longest epoll wait: how soon a stop is noticed
_DATAGRAM = 2048
_PR_SET_NAME = 15

# What a (connected) socket's packets go to.
OnPacket = Callable[[bytes], None]


class RtpPump:
    """One node's RTP thread: register sockets, it reads them and calls back."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._routes: dict[int, tuple[socket.socket, OnPacket]] = {}
        self._frames: deque[tuple[MediaTap, EncodedFrame]] = deque(maxlen=MAX_PENDING_FRAMES)
        self._frames_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="janus-rtp", daemon=True)
        self._last_delivery = 0.0
        self.packets = 0
        self.frames_dropped = 0
        self.handler_errors = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- from the event loop ------------------------------------------------------------
    def register(self, sock: socket.socket, on_packet: OnPacket) -> None:
        """Read ``sock`` from now on; each packet goes to ``on_packet`` (in the thread)."""
        sock.setblocking(False)
        self._routes[sock.fileno()] = (sock, on_packet)
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def unregister(self, sock: socket.socket) -> None:
        """Stop reading ``sock`` (the caller closes it)."""
        fd = sock.fileno()
        if fd < 0:
            return
        self._routes.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (blocking up to ``timeout``); safe to call twice."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._epoll.close()

    # -- from the thread ---------------------------------------------------------------
    def deliver(self, tap: MediaTap, frame: EncodedFrame) -> None:
        """Queue ``frame`` for ``tap``; it is written on the event loop shortly."""
        with self._frames_lock:
            if len(self._frames) == self._frames.maxlen:
                self.frames_dropped += 1
            self._frames.append((tap, frame))

    def _run(self) -> None:
        _name_os_thread(self._thread.name)
        while not self._stopping.is_set():
            try:
                events = self._epoll.poll(_WAIT_S)
            except (OSError, ValueError):
                if self._stopping.is_set():
                    return
                raise
            for fd, _mask in events:
                route = self._routes.get(fd)
                if route is not None:
                    self._drain(*route)
            now = time.monotonic()
            if self._frames and now - self._last_delivery >= DELIVER_EVERY_S:
                self._last_delivery = now
                self._hand_to_loop()
            if events:
                time.sleep(PAUSE_S)
        self._hand_to_loop()

    def _drain(self, sock: socket.socket, on_packet: OnPacket) -> None:
        while True:
            try:
                data = sock.recv(_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed meanwhile by its leg
            self.packets += 1
            try:
                on_packet(data)
            except Exception:
                # One bad packet or handler must not stop every call's media.
                self.handler_errors += 1
                if self.handler_errors == 1:
                    log.exception("janus.rtp_handler_failed")

    def _hand_to_loop(self) -> None:
        with self._frames_lock:
            if not self._frames:
                return
            frames = list(self._frames)
            self._frames.clear()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the node is gone
            self._loop.call_soon_threadsafe(_write_all, frames)


def _name_os_thread(name: str) -> None:
    """Give the OS thread the Python thread's name (``top -H``, ``/proc/*/task/*/comm``),
    so the pump's CPU time can be told apart from the recorder's writer threads."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _write_all(frames: list[tuple[MediaTap, EncodedFrame]]) -> None:
    for tap, frame in frames:
        try:
            tap.write(frame)
        except Exception:  # a tap must never raise; if one does, the others still get theirs
            log.exception("media.tap_failed")

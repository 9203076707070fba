"""A small TCP proxy on loopback that can cut or stall connections on command, for fault tests."""

from __future__ import annotations

import contextlib
import socket
import threading

from support.ports import free_port

CHUNK = 65536


class Proxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target, with faults on demand."""

    def __init__(self, target: int) -> None:
        """Start listening at once."""
        self.target = target
        self.port = free_port()
        self.forwarded = 0  # client-to-server bytes so far
        self._cut_after: int | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)  # closing a socket does not wake accept(): poll instead
        self._closed = False
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pump_up, client, server)
            self._spawn(self._pump_down, server, client)

    def _pump_up(self, source: socket.socket, sink: socket.socket) -> None:
        self._pump(source, sink, upstream=True)

    def _pump_down(self, source: socket.socket, sink: socket.socket) -> None:
        self._pump(source, sink, upstream=False)

    def _pump(self, source: socket.socket, sink: socket.socket, *, upstream: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                self._flowing.wait()  # a stall holds the bytes here
                if upstream:
                    with self._lock:
                        self.forwarded += len(data)
                        due = self._cut_after is not None and self.forwarded >= self._cut_after
                    if due:
                        self.cut()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut_after(self, nbytes: int) -> None:
        """Drop every connection once ``nbytes`` more have gone from client to server."""
        with self._lock:
            self._cut_after = self.forwarded + nbytes

    def cut(self) -> None:
        """Drop every open connection now (new ones are still accepted)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self._cut_after = None
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stall(self) -> None:
        """Stop forwarding: connections stay open, bytes stop moving."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again."""
        self._flowing.set()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed = True
        self.resume()
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

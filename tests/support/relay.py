"""A TCP relay on loopback to the database that can turn silent, as a network that drops the
packets to and from it (a partition, a firewall rule) or a server stopped without being killed."""

from __future__ import annotations

import contextlib
import socket
import threading


class SilentRelay:
    """A TCP relay on loopback to the database that can turn silent: from `silence()` on, it
    forwards nothing either way and accepts new connections without ever answering, as a
    network that drops the packets to and from the database (a firewall rule, a partition)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._silent = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self._silent.set()

    def resume(self) -> None:
        """Forward again, as a network whose partition has healed: the connections made from
        then on reach the database (those of the silence, which lost what was sent meanwhile,
        are the client's to give up)."""
        self._silent.clear()

    def close(self) -> None:
        """Stop relaying, the connections ended both ways: the database's sessions end as
        their client's would (shut down first: a socket closed while a thread waits on it
        stays open until the wait ends, and the database would never see it end)."""
        self._closed.set()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                if sock is not self._server:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self._closed.is_set():  # accepted as it closed, after its sockets were
                client.close()
                return
            if self._silent.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(self._target)
            self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    return
                if not self._silent.is_set():
                    sink.sendall(data)
            except OSError:
                return

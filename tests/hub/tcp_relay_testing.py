"""A TCP relay between the uplink and mosquitto (TLS passes through untouched), for outages the
broker alone cannot make: it can hold the broker->hub direction (the broker stores a message and
acknowledges it, the PUBACK never reaches the hub), cut live connections, refuse new ones."""
import select
import socket
import threading


class Relay:
    def __init__(self, host, port):
        self.target = (host, port)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.hold_down = False  # broker -> hub bytes dropped
        self.refuse = False  # new connections closed at once
        self.pairs = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.refuse:
                c.close()
                continue
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, s))
            threading.Thread(target=self._pump, args=(c, s), daemon=True).start()

    def _pump(self, c, s):
        socks = [c, s]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.2)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        return
                    if x is c:
                        s.sendall(data)
                    elif not self.hold_down:
                        c.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for x in socks:
                try:
                    x.close()
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for c, s in pairs:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.cut()
        self.srv.close()

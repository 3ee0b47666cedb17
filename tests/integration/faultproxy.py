"""A fault-injecting HTTP reverse proxy for registry tests.

A threaded ``http.server`` on 127.0.0.1 in front of a real registry process. Every
request is passed to the backend unless a rule matches it (method and path regular
expressions); a matching rule then does, from its ``nth`` match on, one of:

- ``status``: answer ``code`` (500 by default) with a registry-style error body;
- ``delay``: wait ``seconds``, then pass the request on (a slow registry; the
  request still reaches the backend, as it would with a slow real one);
- ``drop-request``: read half the request body and close the connection (the network
  failed mid-upload; the backend sees nothing);
- ``drop-response``: pass the request on, send the status line, the headers and half
  the body, then close; an answer without a body is not sent at all (the backend did
  the work; the client never learns it);
- ``kill``: send the request line, headers and half the body to the backend, kill the
  backend process (the ``kill`` callable), close the connection.

The proxy forwards the client's Host header, so the Location headers the registry
writes point back at the proxy. A backend that does not answer (killed) is a closed
connection, as a dead registry is.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACTIONS = ("status", "delay", "drop-request", "drop-response", "kill")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


@dataclass
class Rule:
    method: str  # regex matched against the whole method: "PUT", "PATCH|PUT"
    path: str  # regex searched in the path: r"/manifests/", r"/blobs/uploads/"
    action: str
    nth: int = 1  # act from the nth matching request on
    times: int | None = None  # act this many times (None: every time)
    code: int = 500
    seconds: float = 0.0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {ACTIONS}")

    def fires(self, method: str, path: str) -> bool:
        if not (re.fullmatch(self.method, method) and re.search(self.path, path)):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class Seen:
    method: str
    path: str
    action: str  # "pass" or the rule's action


@dataclass
class FaultProxy:
    backend_host: str
    backend_port: int
    kill: Callable[[], None] | None = None
    rules: list[Rule] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def seen(self, action: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.action == action]

    def _match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            rule = next((r for r in self.rules if r.fires(method, path)), None)
            self.requests.append(Seen(method, path, rule.action if rule else "pass"))
            return rule

    def start(self, port: int = 0) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        rule = self.owner._match(self.command, self.path)
        if rule is not None and rule.action == "drop-request":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)
            self._close()
            return
        body = self._body()
        if rule is None:
            self._forward(body)
        elif rule.action == "status":
            doc = {"errors": [{"code": "UNKNOWN", "message": "injected fault", "detail": None}]}
            self._answer(rule.code, json.dumps(doc).encode(), close=True)
        elif rule.action == "delay":
            time.sleep(rule.seconds)
            self._forward(body)
        elif rule.action == "drop-response":
            self._forward(body, cut=True)
        elif rule.action == "kill":
            self._kill_midway(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    def _headers_out(self, length: int | None) -> dict[str, str]:
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        hdrs.pop("Content-Length", None)
        if length is not None:
            hdrs["Content-Length"] = str(length)
        return hdrs

    def _forward(self, body: bytes, *, cut: bool = False) -> None:
        conn = http.client.HTTPConnection(
            self.owner.backend_host, self.owner.backend_port, timeout=120
        )
        try:
            has_body = bool(body) or self.command in ("PUT", "POST", "PATCH")
            conn.request(
                self.command,
                self.path,
                body=body if has_body else None,
                headers=self._headers_out(len(body) if has_body else None),
            )
            resp = conn.getresponse()
            data = resp.read()
        except OSError:  # the backend is gone: so is the registry, for the client
            self._close()
            return
        finally:
            conn.close()
        if cut and (self.command == "HEAD" or not data):
            self._close()  # nothing to cut in half: the answer is lost whole
            return
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                self.send_header(k, v)
        declared = resp.getheader("Content-Length")
        if self.command == "HEAD":
            self.send_header("Content-Length", declared or "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._close()
            return
        self.wfile.write(data)

    def _kill_midway(self, body: bytes) -> None:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(
                (self.owner.backend_host, self.owner.backend_port), timeout=10
            ) as s,
        ):
            head = [f"{self.command} {self.path} HTTP/1.1"]
            head += [f"{k}: {v}" for k, v in self._headers_out(len(body)).items()]
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])
            time.sleep(0.2)
            assert self.owner.kill is not None, "a kill rule needs FaultProxy(kill=...)"
            self.owner.kill()
        self._close()

    def _answer(self, code: int, data: bytes, *, close: bool = False) -> None:
        self.send_response_only(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _close(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

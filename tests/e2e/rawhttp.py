"""Minimal HTTP clients that send exactly the bytes a test gives them: HTTP/1.1 over a plain socket
(no library would send a NUL in a header or a raw 0xff in a path) and HTTP/2 with prior knowledge
(h2c) through the `h2` protocol library, with request trailers when asked.

Every call opens a fresh connection, so a series of calls spreads over Envoy's workers."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any, Sequence

import h2.config
import h2.connection
import h2.events

TIMEOUT_SECONDS = 30.0


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # The connection ended without a complete response (reset, or closed before any status).
    broken: bool = False

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _decode_chunked(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, rest = data.partition(b"\r\n")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


def _complete(received: bytearray) -> bool:
    """Whether `received` holds a whole response (by its Content-Length, or the last chunk). Reading
    on to the server's close would wait out Envoy's `delayed_close_timeout` (1 s) on every call."""
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return False
    fields = {k.strip().lower(): v.strip() for k, _, v in
              (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return body.endswith(b"0\r\n\r\n")
    length = fields.get(b"content-length")
    return length is not None and length.isdigit() and len(body) >= int(length)


def http1(port: int, request: bytes, *, timeout: float = TIMEOUT_SECONDS) -> RawResponse:
    """Send `request` (a whole HTTP/1.1 request, which should say `Connection: close`) and read the
    answer until it is complete or the server closes."""
    received = bytearray()
    broken = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            broken = True  # the server may answer (and close) before reading a huge request
        try:
            while not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            broken = True
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return RawResponse(status=0, body=bytes(received), broken=True)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    response = RawResponse(status=status, headers=headers, body=body, broken=broken)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response.body = _decode_chunked(body)
    return response


def build_http1(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]] = (),
                body: bytes | None = None, *, content_length: bool = True, chunked: bool = False) -> bytes:
    """An HTTP/1.1 request, byte for byte. With `chunked` the body is sent in two chunks."""
    out = bytearray(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
    for name, value in headers:
        out += name + b": " + value + b"\r\n"
    if body is not None and chunked:
        out += b"Transfer-Encoding: chunked\r\n\r\n"
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            if part:
                out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        out += b"0\r\n\r\n"
        return bytes(out)
    if body is not None and content_length:
        out += f"Content-Length: {len(body)}\r\n".encode()
    out += b"\r\n"
    if body is not None:
        out += body
    return bytes(out)


def http2(port: int, method: str, path: str, headers: Sequence[tuple[str | bytes, str | bytes]] = (),
          body: bytes | None = None, *, trailers: Sequence[tuple[str, str]] = (),
          timeout: float = TIMEOUT_SECONDS) -> RawResponse:
    """One HTTP/2 request over cleartext with prior knowledge. With `trailers`, the body's last
    DATA frame does not end the stream: a HEADERS frame with the trailers does."""
    config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        stream = conn.get_next_available_stream_id()
        request_headers: list[tuple[Any, Any]] = [
            (":method", method), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path), *headers,
        ]
        ends_with_headers = body is None and not trailers
        conn.send_headers(stream, request_headers, end_stream=ends_with_headers)
        if body is None and trailers:
            conn.send_headers(stream, list(trailers), end_stream=True)
        sock.sendall(conn.data_to_send())
        response = RawResponse(status=0)
        pending = body or b""
        body_open = body is not None
        done = False
        while not done:
            # Send as much of the body as flow control allows, then the trailers.
            while body_open:
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
                if pending and window <= 0:
                    break
                piece, pending = pending[:window], pending[window:]
                last = not pending
                conn.send_data(stream, piece, end_stream=last and not trailers)
                if last:
                    body_open = False
                    if trailers:
                        conn.send_headers(stream, list(trailers), end_stream=True)
            outgoing = conn.data_to_send()
            if outgoing:
                sock.sendall(outgoing)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                response.broken = True
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    for name, value in event.headers:
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode("latin-1") if isinstance(value, bytes) else value
                        if name == ":status":
                            response.status = int(value)
                        else:
                            response.headers.append((name, value))
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    response.body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    done = True
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    response.broken = True
                    done = True
            outgoing = conn.data_to_send()
            if outgoing:
                sock.sendall(outgoing)
    return response

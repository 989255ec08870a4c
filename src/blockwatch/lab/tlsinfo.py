"""Just enough TLS to read a ClientHello: SNI and ALPN."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ClientHello:
    is_tls: bool
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)


def _u16(buf: bytes, pos: int) -> int:
    if pos + 2 > len(buf):
        raise IndexError(pos)
    return int.from_bytes(buf[pos : pos + 2], "big")


def parse_client_hello(data: bytes) -> ClientHello:
    """Parse the first TLS record; never raises (garbage gives is_tls=False or sni=None)."""
    if len(data) < 5 or data[0] != 0x16:
        return ClientHello(is_tls=False)
    hello = ClientHello(is_tls=True)
    body = data[5 : 5 + _u16(data, 3)]
    try:
        if body[0] != 1:  # not a ClientHello
            return hello
        pos = 4 + 2 + 32  # handshake header, client_version, random
        pos += 1 + body[pos]  # session id
        pos += 2 + _u16(body, pos)  # cipher suites
        pos += 1 + body[pos]  # compression methods
        end = min(pos + 2 + _u16(body, pos), len(body))
        pos += 2
        while pos + 4 <= end:
            ext_type, ext_len = _u16(body, pos), _u16(body, pos + 2)
            ext = body[pos + 4 : pos + 4 + ext_len]
            pos += 4 + ext_len
            if ext_type == 0:  # server_name
                q = 2
                while q + 3 <= len(ext):
                    name_len = _u16(ext, q + 1)
                    if ext[q] == 0:
                        hello.sni = ext[q + 3 : q + 3 + name_len].decode("ascii", "replace")
                    q += 3 + name_len
            elif ext_type == 16:  # ALPN
                q = 2
                while q < len(ext):
                    n = ext[q]
                    hello.alpn.append(ext[q + 1 : q + 1 + n].decode("ascii", "replace"))
                    q += 1 + n
    except IndexError:
        pass
    return hello

#!/usr/bin/env python3
"""Raw clients for the network tests: things the crossgate client never does.

usage: net_client.py MODE PORT CA [CERT KEY] [N SECONDS]
  nocert     mutual TLS without a client certificate; prints what the server said
  bigframe   a request frame header announcing 4294967040 bytes; prints the Error frame
  garbage    plain bytes instead of a TLS ClientHello
  slowloris  open N connections, send nothing, hold them SECONDS; prints how many the server closed
  quiet      CERT KEY SECONDS: handshake with the certificate, then send nothing; prints after how many
             seconds the server closed the connection (or "open after SECONDS")
  cosign     CERT KEY SIZE WITNESS_KEY LINE_FILE: submit a cosignature as given; prints the answer
"""
import socket, ssl, struct, sys, time

from netproto import field, varint

mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def ctx(cert=None, key=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    c.load_verify_locations(ca)
    if cert:
        c.load_cert_chain(cert, key)
    return c


def recv_all(s, limit=65536):
    out = b""
    try:
        while len(out) < limit:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except Exception as e:  # the alert or reset is the answer
        out += ("<" + str(e) + ">").encode()
    return out


if mode == "nocert":
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx().wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"\0\0\0\2\x08\x01")
                print(recv_all(s).decode("utf-8", "replace"))
        except ssl.SSLError as e:
            print("TLS error:", e)
elif mode == "bigframe":
    cert, key = sys.argv[4], sys.argv[5]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx(cert, key).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(struct.pack(">I", 0xFFFFFF00) + b"x" * 64)
            print(recv_all(s).decode("utf-8", "replace"))
elif mode == "garbage":
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
        print(repr(recv_all(s)))
elif mode == "slowloris":
    n, secs = int(sys.argv[4]), float(sys.argv[5])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=secs + 5) for _ in range(n)]
    # one more that starts a ClientHello and stops after 5 bytes
    t = socket.create_connection(("127.0.0.1", port), timeout=secs + 5)
    t.sendall(b"\x16\x03\x01\x02\x00")
    socks.append(t)
    deadline = time.time() + secs
    closed = 0
    for s in socks:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            s.recv(1)          # b"" (closed) or an alert: either way the server gave up on it
            closed += 1
        except (socket.timeout, TimeoutError):
            pass
        except OSError:
            closed += 1
    print("closed by server:", closed, "of", len(socks))
elif mode == "quiet":
    cert, key, secs = sys.argv[4], sys.argv[5], float(sys.argv[6])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx(cert, key).wrap_socket(raw, server_hostname="localhost") as s:
            t0 = time.monotonic()
            s.settimeout(secs)
            try:
                while s.recv(4096):
                    pass
                print("closed after %.1f s" % (time.monotonic() - t0))
            except (socket.timeout, TimeoutError):
                print("open after %g s" % secs)
            except (OSError, ssl.SSLError):
                print("closed after %.1f s" % (time.monotonic() - t0))
elif mode == "cosign":
    cert, key, size, vkey, line = sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7].encode(), open(sys.argv[8], "rb").read()

    inner = varint(1 << 3) + varint(size) + field(2, vkey) + field(3, line)
    req = varint(1 << 3) + varint(1) + field(10, inner)   # Request{version 1, audit_cosign}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx(cert, key).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(struct.pack(">I", len(req)) + req)
            print(recv_all(s).decode("utf-8", "replace"))
else:
    sys.exit("unknown mode " + mode)

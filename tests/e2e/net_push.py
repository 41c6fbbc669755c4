#!/usr/bin/env python3
"""A raw push client for the spool tests: pushes the `agent push` client never makes.

usage: net_push.py PORT CA CERT KEY FILE SIZE SEND [close|bigframe]
  Announce a push of SIZE bytes, then send the first SEND bytes of FILE, and
  print what the server answers (until it closes).
  close     close the connection right after the SEND bytes (no answer awaited)
  bigframe  send FILE's first frame (its BatchHeader), then a frame header
            announcing 15 MiB and 64 bytes of it (SIZE and SEND are ignored)
  trickle   send FILE's first frame, then a 12-byte frame every 0.3 s for up to
            20 s (SIZE: the size announced); prints how long the server took
            to drop it
"""
import socket, ssl, struct, sys, time

from netproto import varint


port, ca, cert, key, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
size, send = int(sys.argv[6]), int(sys.argv[7])
mode = sys.argv[8] if len(sys.argv) > 8 else ""
data = open(path, "rb").read()
if mode == "bigframe":
    first = 4 + struct.unpack(">I", data[:4])[0]
    data = data[:first] + struct.pack(">I", 15 << 20) + b"x" * 64
    size, send = len(data) + 4096, len(data)
if mode == "trickle":
    first = 4 + struct.unpack(">I", data[:4])[0]
    data, send = data[:first], first
data = data[:send]
push = varint(1 << 3) + varint(size)                          # PushRequest{size}
req = varint(1 << 3) + varint(1) + varint(2 << 3 | 2) + varint(len(push)) + push   # Request{version 1, push}
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.minimum_version = ssl.TLSVersion.TLSv1_3
c.load_verify_locations(ca)
c.load_cert_chain(cert, key)
with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
    with c.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(struct.pack(">I", len(req)) + req)
        try:
            s.sendall(data)
        except OSError as e:   # the server may refuse before it has read everything
            print("<send: " + str(e) + ">")
        if mode == "close":
            sys.exit(0)
        if mode == "trickle":
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 20:
                    s.sendall(struct.pack(">I", 8) + b"trickle!")
                    time.sleep(0.3)
                print("not dropped after %.0f s" % (time.monotonic() - t0))
            except OSError:
                print("dropped after %.0f s" % (time.monotonic() - t0))
            sys.exit(0)
        out = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        except Exception as e:  # a reset after the answer
            out += ("<" + str(e) + ">").encode()
        print(out.decode("utf-8", "replace"))

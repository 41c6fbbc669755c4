#!/usr/bin/env python3
"""A pre-authentication flood from one source, for test_net_flood.sh.

usage: net_flood.py PORT SOURCE_IP[+N] IDLE SLOW SECONDS MAX_ATTEMPTS
  Keeps IDLE bare TCP connections that send nothing and SLOW TLS handshakes
  that drip a real ClientHello one byte every half second open against
  127.0.0.1:PORT from SOURCE_IP (or from it and the N loopback addresses
  after it, in turn: a distributed flood), reconnecting each one the server closes,
  for SECONDS or MAX_ATTEMPTS connection attempts (whichever ends first), or
  until SIGTERM.  Prints one line: attempts, how many the server closed, and
  the most connections it held open at once.
"""
import selectors, signal, socket, ssl, sys, time

port = int(sys.argv[1])
base, _, extra = sys.argv[2].partition("+")
a, b, c, d = map(int, base.split("."))
sources = ["%d.%d.%d.%d" % (a, b, c, d + i) for i in range(1 + int(extra or 0))]
n_idle, n_slow, secs, max_attempts = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
HELLO = out.read()

stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
sel = selectors.DefaultSelector()
attempts = closed = held_max = 0
conns = {}          # socket -> [kind, bytes of the ClientHello sent, next drip time]


def open_one(kind):
    global attempts
    attempts += 1
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sources[attempts % len(sources)], 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return
    conns[s] = [kind, 0, time.monotonic()]
    sel.register(s, selectors.EVENT_READ)


t_end = time.monotonic() + secs
want = [("idle", n_idle), ("slow", n_slow)]
while not stop and time.monotonic() < t_end:
    budget = 20         # new connections per 10 ms round: about 2,000 a second at most
    for kind, n in want:
        have = sum(1 for v in conns.values() if v[0] == kind)
        for _ in range(min(n - have, budget)):
            if attempts >= max_attempts:
                break
            open_one(kind)
            budget -= 1
    held_max = max(held_max, len(conns))
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:            # closed (or reset) by the server
            closed += 1
            sel.unregister(s)
            s.close()
            del conns[s]
    now = time.monotonic()
    for s, v in list(conns.items()):
        if v[0] == "slow" and now >= v[2] and v[1] < len(HELLO) - 1:   # never the last byte
            try:
                s.send(HELLO[v[1]:v[1] + 1])
                v[1] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
            v[2] = now + 0.5
    if attempts >= max_attempts and not conns:
        break
    if attempts >= max_attempts:
        time.sleep(0.05)
    else:
        time.sleep(0.01)
print("flood: %d attempts, %d closed by server, %d held at most" % (attempts, closed, held_max))

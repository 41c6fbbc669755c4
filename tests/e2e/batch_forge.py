#!/usr/bin/env python3
"""Rewrite the partner_id of a batch's header (which nothing signs until the
trailer is checked against the partner's key), for the escaping tests.

usage: batch_forge.py IN OUT PARTNER_ID   (PARTNER_ID with Python escapes: \\x1b, \\n, ...)
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netproto import field

src, dst = sys.argv[1], sys.argv[2]
pid = sys.argv[3].encode('latin-1').decode('unicode_escape').encode('latin-1')
b = open(src, 'rb').read()
n = int.from_bytes(b[:4], 'big')
hdr, rest = b[4:4 + n], b[4 + n:]
out, i = b'', 0


def rv(buf, i):
    """A varint at buf[i]: (value, next index)."""
    v = s = 0
    while True:
        c = buf[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i


# walk the header's fields; replace field 2 (partner_id)
while i < len(hdr):
    start = i
    tag, i = rv(hdr, i)
    wt = tag & 7
    if wt == 0:
        _, i = rv(hdr, i)
    elif wt == 2:
        l, i = rv(hdr, i); i += l
    else:
        raise SystemExit('wire type %d' % wt)
    out += field(2, pid) if tag >> 3 == 2 else hdr[start:i]
open(dst, 'wb').write(len(out).to_bytes(4, 'big') + out + rest)

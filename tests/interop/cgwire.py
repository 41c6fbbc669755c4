"""Pieces of docs/PROTOCOL.md shared by the interop packer and auditor.

Implemented to the specification and sharing no code with crossgate: the
section numbers in comments are PROTOCOL.md's.  Uses Debian's
python3-nacl and python3-protobuf; the .proto files are compiled by the test
(protoc --python_out) into a directory named by CG_PB_DIR.
"""
import base64
import hashlib
import os
import struct
import sys

_pb_dir = os.environ.get("CG_PB_DIR")
if not _pb_dir:
    sys.exit("CG_PB_DIR must name the directory protoc --python_out wrote")
sys.path.insert(0, _pb_dir)
import crossgate_pb2 as pb  # noqa: E402
import audit_pb2 as apb  # noqa: E402


class SpecError(Exception):
    """The input breaks a MUST of the specification."""


# ---- §2 framing --------------------------------------------------------------

def frame(payload):
    """§2.1: a 4-byte big-endian length, then the bytes."""
    return struct.pack(">I", len(payload)) + payload


def frames_of(data, limits):
    """Split bytes into frames; limits(i) is the cap of frame i (§2.2)."""
    out, off, i = [], 0, 0
    while off < len(data):
        if len(data) - off < 4:
            raise SpecError("frame header cut short at offset %d" % off)
        (n,) = struct.unpack(">I", data[off:off + 4])
        if n > limits(i):
            raise SpecError("frame %d of %d bytes over its limit of %d" % (i, n, limits(i)))
        if len(data) - off - 4 < n:
            raise SpecError("frame %d cut short" % i)
        out.append(data[off + 4:off + 4 + n])
        off += 4 + n
        i += 1
    return out


# ---- §3 keys -------------------------------------------------------------------

KEY_TYPES = {  # name: (key bytes, type byte of the public half or None for symmetric)
    "x25519-secret": (32, 2), "x25519-public": (32, 2),
    "ed25519-secret": (64, 4), "ed25519-public": (32, 4),
    "match-key": (32, None), "storage-key": (32, None),
}


def key_id(type_name, key, pub=None):
    """§3.2: 8-byte key id."""
    _, tb = KEY_TYPES[type_name]
    if tb is None:
        return hashlib.blake2b(b"crossgate key id v1", digest_size=8, key=key).digest()
    return hashlib.blake2b(b"crossgate key id v1" + bytes([tb]) + pub, digest_size=8).digest()


class Key:
    def __init__(self, type_name, kid, key, pub):
        self.type, self.id, self.key, self.pub = type_name, kid, key, pub


def parse_key_line(line):
    """§3.1: "<type> <16 hex id> <base64>"; the id MUST match the key."""
    parts = line.strip().split(" ")
    if len(parts) != 3 or parts[0] not in KEY_TYPES:
        raise SpecError("not a key line")
    t, hexid, b64 = parts
    key = base64.b64decode(b64, validate=True)
    if len(key) != KEY_TYPES[t][0] or len(hexid) != 16:
        raise SpecError("key line: wrong length")
    pub = None
    if t == "ed25519-secret":
        pub = key[32:]
    elif t == "x25519-secret":
        from nacl.bindings import crypto_scalarmult_base
        pub = crypto_scalarmult_base(key)
    elif t in ("ed25519-public", "x25519-public"):
        pub = key
    kid = key_id(t, key, pub)
    if kid.hex() != hexid:
        raise SpecError("key id does not match the key")
    return Key(t, kid, key, pub)


def load_key(path, want):
    with open(path, encoding="ascii") as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1:
        raise SpecError("%s: expected exactly one key line" % path)
    k = parse_key_line(lines[0])
    if k.type != want:
        raise SpecError("%s: a %s, not a %s" % (path, k.type, want))
    return k

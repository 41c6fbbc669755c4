"""Protobuf wire-format pieces the raw test clients (net_client.py, net_push.py) build requests with."""


def varint(v):
    """v as a protobuf base-128 varint."""
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def field(num, data):
    """A length-delimited field: tag, length, bytes."""
    return varint(num << 3 | 2) + varint(len(data)) + data

#!/usr/bin/python3
"""A crossgate auditor implemented to docs/PROTOCOL.md.

  auditor.py fetch --gateway HOST:PORT --ca CA --cert CERT --key KEY --out LOG
      §8.4 audit_fetch over mutual TLS; LOG gets the Response frames as received
  auditor.py consistency --gateway HOST:PORT --ca CA --cert CERT --key KEY --old M [--new N] --out FILE
      §8.5: the gateway's consistency proof file from tree size M (check it with verify-proof)
  auditor.py verify LOG --pub GATEWAY_SIGN_PUB [--witness VKEY ...]
      recompute the RFC 6962 tree from the fetched events and check every
      checkpoint (§9.3) under the key chain (§9.4), and the named witnesses'
      cosignatures (§9.8); print the tree head
  auditor.py verify-jsonl FILE --pub GATEWAY_SIGN_PUB
      the same from the output of `crossgate audit show --format jsonl`
  auditor.py verify-proof FILE --pub GATEWAY_SIGN_PUB
      check an inclusion proof file (§9.5) or a consistency proof file (§9.6)
  auditor.py verify-note NOTE --vkey NAME+KEYID+BASE64
      a C2SP signed note checked with a verifier key alone
  auditor.py tamper LOG OUT --seq N
      a copy of LOG whose event N says something else (for the tests)

Exit 0 when everything verifies, 1 with the reason otherwise.
"""
import argparse
import base64
import hashlib
import json
import socket
import ssl
import struct
import sys

from google.protobuf.message import DecodeError
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from cgwire import SpecError, apb, frame, frames_of, load_key, parse_key_line, pb

EM_DASH = "\u2014"


# ---- §9.2 RFC 6962 hashing ---------------------------------------------------------

def leaf_hash(event):
    return hashlib.sha256(b"\0" + event).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\1" + left + right).digest()


class Frontier:
    """The right edge of the tree: one perfect subtree per set bit of the size."""

    def __init__(self):
        self.size, self.stack = 0, []

    def append(self, leaf):
        h, n = leaf, self.size
        while n & 1:
            h = node_hash(self.stack.pop(), h)
            n >>= 1
        self.stack.append(h)
        self.size += 1

    def root(self):
        if not self.stack:
            return hashlib.sha256(b"").digest()
        r = self.stack[-1]
        for h in reversed(self.stack[:-1]):
            r = node_hash(h, r)
        return r


def inclusion_root(index, size, leaf, path):
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or None if it cannot."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# ---- §9.3 signed notes and checkpoints -----------------------------------------------

def note_key_id(name, pub, alg=1):
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + pub).digest()[:4]


def key_name(key_id8):
    return "crossgate/gateway/" + key_id8.hex()


def note_split(note):
    """(text, [(name, key id, signature)]) of a signed note."""
    i = note.find("\n\n")
    if i < 0:
        raise SpecError("not a signed note (no blank line)")
    text, sigs = note[:i + 1], []
    for line in note[i + 2:].split("\n"):
        if line == "":
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise SpecError("malformed signature line")
        raw = base64.b64decode(parts[2], validate=True)
        if len(raw) < 5:
            raise SpecError("short signature")
        sigs.append((parts[1], raw[:4], raw[4:]))
    return text, sigs


def note_signed_by(note, name, pub):
    text, sigs = note_split(note)
    kid = note_key_id(name, pub)
    for n, k, s in sigs:
        if n == name and k == kid:
            try:
                VerifyKey(pub).verify(text.encode(), s)
                return text
            except BadSignatureError:
                raise SpecError("bad signature by %s" % name)
    raise SpecError("no signature by %s" % name)


def checkpoint_body(text):
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise SpecError("malformed checkpoint body")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise SpecError("checkpoint root is not 32 bytes")
    return lines[0], int(lines[1]), root


class KeyChain:
    """§9.4: the first key names the origin; key-rotate events hand over."""

    def __init__(self, pub_key):
        self.origin = key_name(pub_key.id)
        self.keys = [(0, pub_key.id, pub_key.pub)]   # (from, id, pub): signs sizes > from

    def signer(self, size):
        k = self.keys[0]
        for cand in self.keys:
            if cand[0] < size:
                k = cand
        return k

    def signed(self, note, kid, pub):
        """§9.3: a gateway key signs under the origin; logs rotated by earlier versions used its own name."""
        try:
            return note_signed_by(note, self.origin, pub)
        except SpecError:
            if key_name(kid) == self.origin:
                raise
            return note_signed_by(note, key_name(kid), pub)

    def check(self, note, size):
        frm, kid, pub = self.signer(size)
        text = self.signed(note, kid, pub)
        origin, n, root = checkpoint_body(text)
        if origin != self.origin:
            raise SpecError("checkpoint origin %r is not the log's %r" % (origin, self.origin))
        if n != size:
            raise SpecError("checkpoint says size %d, expected %d" % (n, size))
        for f, k, p in self.keys[1:]:
            if f == size:   # a rotation's own checkpoint: the new key signs it too
                self.signed(note, k, p)
        return root

    def rotate(self, seq, event):
        ev = pb.AuditEvent.FromString(event)
        if ev.action != "key-rotate" or len(ev.public_keys) != 2:
            raise SpecError("event %d is not a well-formed key-rotate event" % seq)
        old, new = (parse_key_line(x) for x in ev.public_keys)
        cur = self.keys[-1]
        if old.id != cur[1] or old.pub != cur[2] or new.type != "ed25519-public" or new.pub == cur[2]:
            raise SpecError("key-rotate event %d does not hand over from the key in force" % seq)
        self.keys.append((seq + 1, new.id, new.pub))


# ---- §8.4 fetching ------------------------------------------------------------------------

def read_frame(conn, limit=1 << 20):
    def exact(n):
        b = b""
        while len(b) < n:
            c = conn.recv(n - len(b))
            if not c:
                raise SpecError("connection closed inside a frame")
            b += c
        return b
    (n,) = struct.unpack(">I", exact(4))
    if n > limit:
        raise SpecError("response frame over %d bytes" % limit)
    return exact(n)


def connect(a):
    """§7: TLS 1.3, the deployment's CA only, the server's host name checked, our certificate presented."""
    host, port = a.gateway.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    raw = socket.create_connection((host, int(port)), timeout=30)
    return ctx.wrap_socket(raw, server_hostname=host)


def consistency(a):
    """§8.5: the gateway's consistency proof file from tree size --old to --new (0: the latest)."""
    with connect(a) as conn:
        req = pb.Request(version=1, audit_consistency=pb.AuditConsistencyRequest(old_size=a.old, new_size=a.new))
        conn.sendall(frame(req.SerializeToString()))
        resp = pb.Response.FromString(read_frame(conn))
    if resp.WhichOneof("result") == "error":
        raise SpecError("gateway error %s: %s" % (resp.error.code, resp.error.message))
    if resp.WhichOneof("result") != "audit_consistency":
        raise SpecError("unexpected answer")
    with open(a.out, "wb") as f:
        f.write(resp.audit_consistency.proof)


def fetch(a):
    with connect(a) as conn:
        req = pb.Request(version=1, audit_fetch=pb.AuditFetchRequest(**{"from": 0, "cosignatures": True}))
        conn.sendall(frame(req.SerializeToString()))
        got = [read_frame(conn)]
        head = pb.Response.FromString(got[0])
        if head.WhichOneof("result") != "audit_fetch":
            raise SpecError("gateway answered %s" % head)
        for _ in range(head.audit_fetch.count + head.audit_fetch.cosignatures):
            got.append(read_frame(conn))
    with open(a.out, "wb") as f:
        f.write(b"".join(frame(g) for g in got))
    print(json.dumps({"records": head.audit_fetch.count, "cosignatures": head.audit_fetch.cosignatures}))


# ---- verification -------------------------------------------------------------------------

def verify(a):
    resp = [pb.Response.FromString(b) for b in frames_of(open(a.log, "rb").read(), lambda i: 1 << 20)]
    head = resp[0].audit_fetch
    recs = [r.audit_record for r in resp[1:1 + head.count]]
    if any(r.WhichOneof("result") != "audit_record" for r in resp[1:1 + head.count]):
        raise SpecError("expected %d audit records" % head.count)
    cosigs = [r.audit_cosignature for r in resp[1 + head.count:]]
    if len(cosigs) != head.cosignatures or any(r.WhichOneof("result") != "audit_cosignature"
                                               for r in resp[1 + head.count:]):
        raise SpecError("expected %d cosignatures after the records" % head.cosignatures)
    verify_records(load_key(a.pub, "ed25519-public"), recs, head.cosignatures,
                   witnesses(a.witness or [], recs, cosigs))


def witnesses(vkeys, recs, cosigs):
    """§9.8: the tree sizes each named witness cosigned, every one of its lines verified."""
    bodies = {r.seq + 1: note_split(r.checkpoint)[0] for r in recs if r.checkpoint}
    out = {}
    for vkey in vkeys:
        name, kid, b64 = vkey.split("+", 2)
        raw = base64.b64decode(b64, validate=True)
        if len(raw) != 33 or raw[0] != 4 or note_key_id(name, raw[1:], 4).hex() != kid:
            raise SpecError("malformed witness verifier key")
        sizes = []
        for c in cosigs:
            parts = c.line.rstrip("\n").split(" ")
            if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != name:
                continue
            blob = base64.b64decode(parts[2], validate=True)
            if len(blob) != 76 or blob[:4].hex() != kid or c.size not in bodies:
                raise SpecError("cosignature by %s of size %d is malformed" % (name, c.size))
            (t,) = struct.unpack(">Q", blob[4:12])
            msg = b"cosignature/v1\ntime %d\n" % t + bodies[c.size].encode()
            try:
                VerifyKey(raw[1:]).verify(msg, blob[12:])
            except BadSignatureError:
                raise SpecError("cosignature by %s of size %d does not verify" % (name, c.size))
            sizes.append(c.size)
        out[name] = max(sizes) if sizes else 0
    return out


def verify_jsonl(a):
    """The same from `crossgate audit show --format jsonl` (leaf_hash, event, erased_by, checkpoint)."""
    import types
    recs = []
    for line in open(a.log, encoding="utf-8"):
        o = json.loads(line)
        leaf = bytes.fromhex(o["leaf_hash"])
        event = base64.b64decode(o.get("event", ""), validate=True)
        erased = bool(o.get("erased"))
        if not erased and leaf != leaf_hash(event):
            raise SpecError("event %d: leaf_hash is not the hash of its bytes" % o["seq"])
        recs.append(types.SimpleNamespace(seq=o["seq"], event=event, erased=erased, leaf_hash=leaf,
                                          erased_by=o.get("erased_by", 0), checkpoint=o.get("checkpoint", "")))
    verify_records(load_key(a.pub, "ed25519-public"), recs, 0, {})


def verify_records(pub, recs, ncosig, cosigned):
    kc, tree, last_cp, claimed, erased_by = KeyChain(pub), Frontier(), None, {}, {}
    for r in recs:
        if r.seq != tree.size:
            raise SpecError("record %d arrives at position %d" % (r.seq, tree.size))
        if r.erased:
            if r.event or len(r.leaf_hash) != 32 or r.erased_by <= r.seq:
                raise SpecError("erased event %d is malformed" % r.seq)
            leaf = r.leaf_hash
            erased_by.setdefault(r.erased_by, []).append(r.seq)
        else:
            ev = pb.AuditEvent.FromString(r.event)
            if ev.seq != r.seq:
                raise SpecError("event %d says it is event %d" % (r.seq, ev.seq))
            leaf = leaf_hash(r.event)
            if ev.action == "audit-erase":
                claimed[r.seq] = (ev.counts.get("erased", 0), ev.counts.get("from", 0), ev.counts.get("to", 0))
            if ev.action == "key-rotate":
                if not r.checkpoint:
                    raise SpecError("key-rotate event %d has no checkpoint of its own" % r.seq)
                kc.rotate(r.seq, r.event)
        tree.append(leaf)
        if r.checkpoint:
            root = kc.check(r.checkpoint, tree.size)
            if root != tree.root():
                raise SpecError("events up to %d do not match the checkpoint of size %d" % (r.seq, tree.size))
            last_cp = r.checkpoint
    if recs and not recs[-1].checkpoint:
        raise SpecError("the last event has no checkpoint")
    for by, seqs in erased_by.items():
        n, lo, hi = claimed.get(by, (0, 0, 0))
        if n != len(seqs) or min(seqs) < lo or max(seqs) >= hi:
            raise SpecError("events erased by %d are not the ones its audit-erase event claims" % by)
    print(json.dumps({"verified": True, "size": tree.size, "root": base64.b64encode(tree.root()).decode(),
                      "rotations": len(kc.keys) - 1, "erased": sum(len(v) for v in erased_by.values()),
                      "cosignatures": ncosig, "witnessed": cosigned, "checkpoint": last_cp}))


def consistent(m, n, root_m, root_n, proof):
    """RFC 9162 §2.1.4.2: does the tree of size n extend the tree of size m (0 < m <= n)?"""
    if m == n:
        return not proof and root_m == root_n
    if m & (m - 1) == 0:
        proof = [root_m] + proof
    if not proof:
        return False
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


def follow_rotations(kc, rotations):
    """§9.5: each rotation proven in its own checkpoint, signed by the key before."""
    for rot in rotations:
        frm, kid, kpub = kc.keys[-1]
        text = kc.signed(rot.checkpoint, kid, kpub)
        origin, size, root = checkpoint_body(text)
        if origin != kc.origin or size != rot.index + 1:
            raise SpecError("rotation %d: checkpoint is not the log's of size %d" % (rot.index, rot.index + 1))
        if inclusion_root(rot.index, size, leaf_hash(rot.event), list(rot.hashes)) != root:
            raise SpecError("rotation %d: inclusion proof fails" % rot.index)
        kc.rotate(rot.index, rot.event)
        kc.check(rot.checkpoint, size)   # and the new key's signature is on it


def verify_proof(a):
    pub = load_key(a.pub, "ed25519-public")
    data = open(a.file, "rb").read()
    if len(data) > 256 * 1024:
        raise SpecError("proof file over 256 KiB")
    try:   # the two kinds of proof file differ by their format field (§9.5, §9.6)
        c = apb.ConsistencyProof.FromString(data)
        if c.format == "crossgate-consistency-proof/v1":
            return verify_consistency(pub, c, a.since)
    except DecodeError:
        pass
    if a.since:
        raise SpecError("--since goes with a consistency proof")
    p = apb.InclusionProof.FromString(data)
    if p.format != "crossgate-inclusion-proof/v1":
        raise SpecError("unknown proof format %r" % p.format)
    kc = KeyChain(pub)
    follow_rotations(kc, p.rotations)
    text, _ = note_split(p.checkpoint)
    _, size, _ = checkpoint_body(text)
    root = kc.check(p.checkpoint, size)
    if p.erased:
        if p.event or len(p.leaf_hash) != 32:
            raise SpecError("erased event: expected its leaf hash only")
        leaf = p.leaf_hash
    else:
        leaf = leaf_hash(p.event)
        if p.leaf_hash != leaf:
            raise SpecError("leaf_hash is not the event's")
        if pb.AuditEvent.FromString(p.event).seq != p.index:
            raise SpecError("the event's seq is not the proof's index")
    if any(len(h) != 32 for h in p.hashes) or inclusion_root(p.index, size, leaf, list(p.hashes)) != root:
        raise SpecError("event %d is not in the tree of size %d the checkpoint signs" % (p.index, size))
    print(json.dumps({"verified": True, "index": p.index, "size": size, "erased": p.erased}))


def verify_consistency(pub, c, since=None):
    """§9.6: both checkpoints under the key chain, then the RFC 6962 proof between their roots."""
    kc = KeyChain(pub)
    follow_rotations(kc, c.rotations)
    sizes = []
    for note in (c.old_checkpoint, c.new_checkpoint):
        text, _ = note_split(note)
        size = checkpoint_body(text)[1]
        sizes.append((size, kc.check(note, size)))
    (m, root_m), (n, root_n) = sizes
    if any(r.index >= n for r in c.rotations):
        raise SpecError("a key rotation is not below the new tree size")
    if not 0 < m <= n or any(len(h) != 32 for h in c.hashes):
        raise SpecError("malformed consistency proof")
    if not consistent(m, n, root_m, root_n, list(c.hashes)):
        raise SpecError("the tree of size %d does not extend the tree of size %d" % (n, m))
    if since is not None:   # §9.6: it must start from the checkpoint this auditor saved
        saved = open(since, encoding="utf-8").read()
        size = checkpoint_body(note_split(saved)[0])[1]
        if (size, KeyChain(pub).check(saved, size)) != (m, root_m):
            raise SpecError("the proof does not start from the saved checkpoint")
    print(json.dumps({"verified": True, "old_size": m, "new_size": n}))


def verify_note(a):
    """A generic C2SP check: the note carries a valid signature by the verifier key (NAME+KEYID+BASE64)."""
    name, kid, b64 = a.vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1 or note_key_id(name, raw[1:]).hex() != kid:
        raise SpecError("malformed verifier key")
    text = note_signed_by(open(a.note, encoding="utf-8").read(), name, raw[1:])
    print(json.dumps({"verified": True, "origin": text.split("\n")[0], "name": name}))


def tamper(a):
    fr = frames_of(open(a.log, "rb").read(), lambda i: 1 << 20)
    out = []
    for b in fr:
        r = pb.Response.FromString(b)
        if r.WhichOneof("result") == "audit_record" and r.audit_record.seq == a.seq:
            ev = pb.AuditEvent.FromString(r.audit_record.event)
            ev.reason = ev.reason + " (rewritten)"
            r.audit_record.event = ev.SerializeToString()
            b = r.SerializeToString()
        out.append(frame(b))
    open(a.out, "wb").write(b"".join(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch")
    for o in ("gateway", "ca", "cert", "key", "out"):
        f.add_argument("--" + o, required=True)
    cs = sub.add_parser("consistency")
    for o in ("gateway", "ca", "cert", "key", "out"):
        cs.add_argument("--" + o, required=True)
    cs.add_argument("--old", type=int, required=True)
    cs.add_argument("--new", type=int, default=0)
    v = sub.add_parser("verify")
    v.add_argument("log")
    v.add_argument("--pub", required=True)
    v.add_argument("--witness", action="append", help="a witness verifier key NAME+KEYID+BASE64(0x04||pub)")
    vj = sub.add_parser("verify-jsonl")
    vj.add_argument("log")
    vj.add_argument("--pub", required=True)
    vp = sub.add_parser("verify-proof")
    vp.add_argument("file")
    vp.add_argument("--pub", required=True)
    vp.add_argument("--since", help="a saved checkpoint a consistency proof must start from")
    n = sub.add_parser("verify-note")
    n.add_argument("note")
    n.add_argument("--vkey", required=True)
    t = sub.add_parser("tamper")
    t.add_argument("log")
    t.add_argument("out")
    t.add_argument("--seq", type=int, required=True)
    a = ap.parse_args()
    try:
        {"fetch": fetch, "consistency": consistency, "verify": verify, "verify-jsonl": verify_jsonl, "verify-proof": verify_proof,
         "verify-note": verify_note, "tamper": tamper}[a.cmd](a)
    except (SpecError, ValueError) as e:
        sys.exit("auditor: %s" % e)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Check the worked example of docs/PROTOCOL.md §6 against this implementation.

  example.py PROTOCOL.md      exit 0 if every value in §6 is what the
                              interop code computes, 1 naming the first that is not
Prints the example's tokens (one hex per line) for the test to compare with
the C agent's.
"""
import base64
import hashlib
import re
import sys

import packer as P
from auditor import KeyChain, leaf_hash
from cgwire import Key, SpecError, key_id, parse_key_line, pb


def main():
    doc = open(sys.argv[1], encoding="utf-8").read()
    sec = doc[doc.index("## 6. Worked example"):doc.index("## 7. Transport")]

    def want(pattern):
        m = re.search(pattern, sec)
        if m is None:
            sys.exit("example: §6 lacks %r" % pattern)
        return m.group(1)

    def same(what, got, expected):
        if got != expected:
            sys.exit("example: %s is %s, §6 says %s" % (what, got, expected))

    stamp, secs = re.search(r"\(`(\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d)` is (\d+)\)", doc).groups()
    same("the consent time %s" % stamp, P.parse_time(stamp), int(secs))
    mk = parse_key_line(want(r"\n    (match-key [0-9a-f]{16} \S+)\n"))
    same("the match key", mk.key, bytes(range(32)))
    rules = {}
    for raw, norm in re.findall(r"\n\| `([^`]+)` \| `([^`]+)` \|", sec):
        got = P.normalize_email(raw, rules) if "@" in raw else P.normalize_phone(raw, "CN")
        same("normalize(%r)" % raw, got, norm)
    te = P.token(mk.key, 1, "alicesmith@gmail.com")
    tp = P.token(mk.key, 2, "+8613812345678")
    same("the email token", te.hex(), want(r"token\(email\) = ([0-9a-f]{64})"))
    same("the phone token", tp.hex(), want(r"token\(phone\) = ([0-9a-f]{64})"))
    block = sec[sec.index("the AD is 124 bytes"):sec.index("Nonces:")]
    ad_hex = "".join(re.findall(r"^    ((?:[0-9a-f]{2} ?)+)", block, re.M)).replace(" ", "")
    ad = P.record_ad(bytes(range(0xa0, 0xb0)), "k", 0, 3, 1714564800, [(1, te), (2, tp)])
    same("the AD", ad.hex(), ad_hex)
    same("the AD length", len(ad), 124)
    same("nonce 258", P.record_nonce(258).hex(), want(r"index 258 gives\s+`([0-9a-f]{24})`"))
    pub = parse_key_line(want(r"\n    key line\s+(ed25519-public \S+ \S+)"))
    same("the public key", pub.pub.hex(), want(r"public\s+key `([0-9a-f]{64})`"))
    name = "crossgate/gateway/" + pub.id.hex()
    same("the key name", name, want(r"\n    key name/origin\s+(\S+)"))
    nk = hashlib.sha256(name.encode() + b"\n\x01" + pub.pub).digest()[:4]
    same("the note key id", nk.hex(), want(r"\n    note key id\s+([0-9a-f]{8})"))
    same("the verifier key", "%s+%s+%s" % (name, nk.hex(), base64.b64encode(b"\x01" + pub.pub).decode()),
         want(r"\n    verifier key\s+(\S+)"))
    ev = pb.AuditEvent(seq=0, time=1714564800, actor="operator", action="keygen", outcome="ok")
    eb = bytes.fromhex(want(r"encoded as\s+`([0-9a-f]+)`"))
    same("the event", pb.AuditEvent.FromString(eb), ev)
    same("the leaf hash", leaf_hash(eb).hex(), want(r"hash \(= root\) `([0-9a-f]{64})`"))
    note = want(r"the checkpoint\n\n((?:    .*\n|\n)+)")
    note = "\n".join(ln[4:] for ln in note.rstrip("\n").split("\n")) + "\n"
    root = KeyChain(Key("ed25519-public", key_id("ed25519-public", None, pub.pub), pub.pub, pub.pub)).check(note, 1)
    same("the checkpoint root", root, leaf_hash(eb))
    print(te.hex())
    print(tp.hex())


if __name__ == "__main__":
    try:
        main()
    except SpecError as e:
        sys.exit("example: %s" % e)

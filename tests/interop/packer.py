#!/usr/bin/python3
"""A crossgate agent's packer, and a batch reader, implemented to docs/PROTOCOL.md.

  packer.py pack --policy P --partner ID --input CSV --out BATCH
                 --match-key K --sign-key K --gateway-pub K
  packer.py revoke --policy P --partner ID --input CSV --out BATCH
                 --match-key K --sign-key K --gateway-pub K [--now UNIX]
      a revocation batch (§5.7) for the users the CSV's identifier columns name
  packer.py read BATCH --policy P --sign-pub K [--gateway-key K]
      verify a batch (§5.5) and print one JSON line per record:
      tokens, consent, and (with the gateway's X25519 secret key) the fields

Exit 0 on success; 1 with a message when an input breaks the specification.
"""
import argparse
import csv
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import time

import yaml
from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_decrypt,
                           crypto_aead_chacha20poly1305_ietf_encrypt)
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey
from nacl.exceptions import BadSignatureError

from cgwire import SpecError, frame, frames_of, load_key, pb

HEADER_MAX, RECORD_MAX, TRAILER_MAX = 4096, 65536, 1024   # §2.2

# ---- §4.1 email --------------------------------------------------------------

SPACE = set(" \t\n\r\v\f\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | \
    {chr(c) for c in range(0x2000, 0x200c)}
ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
LDH = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def trim(s):
    a, b = 0, len(s)
    while a < b and s[a] in SPACE:
        a += 1
    while b > a and s[b - 1] in SPACE:
        b -= 1
    return s[a:b]


def normalize_email(cell, rules):
    s = trim(cell)
    if not s:
        raise SpecError("email: empty")
    for ch in s:
        if ch in SPACE:
            raise SpecError("email: white space inside")
        if ord(ch) >= 0x80:
            raise SpecError("email: non-ASCII")
        if ch == '"':
            raise SpecError("email: quoted local part")
    if len(s) > 254:
        raise SpecError("email: too long")
    s = s.lower()
    if "\0" in s or s.count("@") != 1:
        raise SpecError("email: needs exactly one @")
    local, domain = s.split("@")
    if not 1 <= len(local) <= 64 or local[0] == "." or local[-1] == "." or ".." in local:
        raise SpecError("email: bad local part")
    if any(c != "." and c not in ATEXT for c in local):
        raise SpecError("email: bad local part")
    if "." not in domain or any(c != "." and c not in LDH for c in domain):
        raise SpecError("email: bad domain")
    for label in domain.split("."):
        if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            raise SpecError("email: bad domain label")
    if rules.get("googlemail", True) and domain == "googlemail.com":
        domain = "gmail.com"
    gmail = domain in ("gmail.com", "googlemail.com")
    if (rules.get("plus_tags_all", False) or (gmail and rules.get("plus_tags", True))) and "+" in local:
        local = local[:local.index("+")]
        if not local:
            raise SpecError("email: empty once the tag is removed")
    if gmail and rules.get("gmail_dots", True):
        local = local.replace(".", "")
        if not local:
            raise SpecError("email: empty once the dots are removed")
    if local.endswith("."):
        raise SpecError("email: local part ends with a dot")
    return local + "@" + domain


# ---- §4.2 phone ----------------------------------------------------------------

COUNTRIES = {  # alpha-2: (calling code, trunk prefix, international prefix other than 00)
    "AT": ("43", "0", None), "AU": ("61", "0", "0011"), "BE": ("32", "0", None),
    "BR": ("55", "0", None), "CA": ("1", "1", "011"), "CH": ("41", "0", None),
    "CN": ("86", "0", None), "DE": ("49", "0", None), "DK": ("45", "", None),
    "ES": ("34", "", None), "FI": ("358", "0", None), "FR": ("33", "0", None),
    "GB": ("44", "0", None), "HK": ("852", "", None), "IE": ("353", "0", None),
    "IN": ("91", "0", None), "IT": ("39", "", None), "JP": ("81", "0", "010"),
    "KR": ("82", "0", None), "NL": ("31", "0", None), "NO": ("47", "", None),
    "NZ": ("64", "0", None), "PL": ("48", "", None), "PT": ("351", "", None),
    "RU": ("7", "8", "810"), "SE": ("46", "0", None), "SG": ("65", "", None),
    "TW": ("886", "0", "002"), "US": ("1", "1", "011"),
}
TWO_DIGIT_CC = set("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
                   "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split())


def cc_len(d):
    if not d or d[0] == "0":
        return 0
    if d[0] in "17":
        return 1
    if len(d) < 2:
        return 0
    return 2 if d[:2] in TWO_DIGIT_CC else 3


def phone_char(ch):
    c = ord(ch)
    if 0xFF10 <= c <= 0xFF19:
        ch = chr(c - 0xFF10 + 0x30)
    elif c == 0xFF0B:
        ch = "+"
    elif c == 0xFF08:
        ch = "("
    elif c == 0xFF09:
        ch = ")"
    elif c in (0xFF0D, 0xFF0E, 0xFF0F, 0x2212) or 0x2010 <= c <= 0x2015:
        ch = "-"
    if "0" <= ch <= "9":
        return "digit", ch
    if ch.isascii() and ch.isalpha():
        return "letter", ch
    if ch in "+()":
        return ch, ch
    if ch in "-./" or ch in SPACE:
        return "sep", ch
    return "bad", ch


def normalize_phone(cell, country):
    home = COUNTRIES.get(country.upper())
    if home is None:
        raise ValueError("unknown default country")
    s = trim(cell)
    if not s:
        raise SpecError("phone: empty")
    d, plus, open_at, paren_digits, paren_zero = "", False, None, 0, None
    for i, ch in enumerate(s):
        kind, v = phone_char(ch)
        if kind == "digit":
            d += v
            paren_digits += 1
        elif kind == "+":
            if i != 0:
                raise SpecError("phone: '+' not at the start")
            plus = True
        elif kind == "(":
            open_at, paren_digits = len(d), 0
        elif kind == ")":
            if open_at is not None and paren_digits == 1 and d.endswith("0"):
                paren_zero = len(d) - 1
            open_at = None
        elif kind != "sep":
            raise SpecError("phone: invalid character")
    if len(d) > 24:
        raise SpecError("phone: too many digits")
    p, intl = 0, False
    code, trunk, idd = home
    if plus:
        intl = True
    elif idd and len(d) > len(idd) and d.startswith(idd):
        intl, p = True, len(idd)
    elif len(d) > 2 and d.startswith("00"):
        intl, p = True, 2
    if intl:
        if p == len(d):
            raise SpecError("phone: too few digits")
        n = cc_len(d[p:])
        if n == 0:
            raise SpecError("phone: invalid country code")
        if n > len(d) - p:
            raise SpecError("phone: too few digits")
        cc = d[p:p + n]
        dest = next((c for c in COUNTRIES.values() if c[0] == cc), None)
        p += n
        if p < len(d) and d[p] == "0":
            dropped = (paren_zero == p and cc not in ("39", "378")) or (dest is not None and dest[1] == "0")
            if dropped:
                p += 1
                if p < len(d) and d[p] == "0":
                    raise SpecError("phone: 0 after the trunk prefix")
    else:
        cc = code
        if trunk in ("1", "8"):
            if len(d) == 11 and d[0] == trunk:
                p = 1
        elif trunk and d and d[0] == trunk:
            p = 1
    total = len(cc) + len(d) - p
    if total < 7:
        raise SpecError("phone: too few digits")
    if total > 15:
        raise SpecError("phone: too many digits")
    return "+" + cc + d[p:]


# ---- §4.3 tokens, §5.3 associated data, §5.4 sealing ----------------------------

KIND_EMAIL, KIND_PHONE = 1, 2
TOKEN_DOMAIN = {KIND_EMAIL: b"crossgate token v1/email/", KIND_PHONE: b"crossgate token v1/phone/"}


def token(match_key, kind, normalized):
    return hmac.new(match_key, TOKEN_DOMAIN[kind] + normalized.encode("ascii"), hashlib.sha256).digest()


def record_ad(batch_id, partner, index, consent_bits, consent_at, tokens):
    p = partner.encode("utf-8")
    ad = b"crossgate record v1" + batch_id + bytes([len(p)]) + p
    ad += struct.pack(">QIq", index, consent_bits, consent_at) + bytes([len(tokens)])
    for kind, value in tokens:
        ad += bytes([kind]) + value
    return ad


def record_nonce(index):
    return struct.pack("<Q", index) + b"\0\0\0\0"


def signed_message(count, digest):
    return b"crossgate batch v1\n" + struct.pack(">Q", count) + digest


# ---- the policy (§4.4) -----------------------------------------------------------

def parse_time(v):
    """§4.4 consent_time: ISO 8601 subset to unix seconds."""
    import datetime
    if len(v) == 10:
        dt = datetime.datetime.strptime(v, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
        return int(dt.timestamp())
    if len(v) < 19 or v[10] not in "T ":
        raise SpecError("not a timestamp")
    base = datetime.datetime.strptime(v[:10] + "T" + v[11:19], "%Y-%m-%dT%H:%M:%S")
    rest = v[19:]
    if rest.startswith("."):
        j = 1
        while j < len(rest) and rest[j].isdigit():
            j += 1
        if j == 1 or j > 10:
            raise SpecError("bad fraction")
        rest = rest[j:]
    off = 0
    if rest == "Z" or rest == "":
        pass
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        off = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        raise SpecError("bad zone")
    utc = base.replace(tzinfo=datetime.timezone.utc)
    return int(utc.timestamp()) - off


def shared(col):
    return col.get("role") in ("feature", "quasi_identifier") and col.get("purposes", None) != []


def pack(a):
    raw = open(a.policy, "rb").read()
    pol = yaml.safe_load(raw)
    purposes = pol["purposes"]
    partner = next(p for p in pol["partners"] if p["id"] == a.partner)
    cols = {c["name"]: c for c in partner["columns"]}
    rules = pol.get("email", {})
    country = pol.get("default_phone_country", "CN")
    match = load_key(a.match_key, "match-key")
    sign = load_key(a.sign_key, "ed25519-secret")
    gw = load_key(a.gateway_pub, "x25519-public")

    rows = []   # [line, consent_at, bits, {kind: normalized}, payload bytes]
    bad = 0
    with open(a.input, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip(" ") for h in next(reader)]
        if sorted(header) != sorted(cols):
            raise SpecError("the CSV header is not the partner's schema")
        for line, cells in enumerate(reader, start=2):
            try:
                if len(cells) != len(header):
                    raise SpecError("row has %d fields, the header %d" % (len(cells), len(header)))
                rows.append(pack_row(line, dict(zip(header, cells)), cols, purposes, rules, country))
            except (SpecError, ValueError):
                bad += 1
    # §5.9 rows of one user: one key, the normalized email, or the phone of a row without one.
    groups = {}
    for i, r in enumerate(rows):
        key = (KIND_EMAIL, r[3][KIND_EMAIL]) if KIND_EMAIL in r[3] else (KIND_PHONE, r[3][KIND_PHONE])
        groups.setdefault(key, []).append(i)
    winner = {}     # row -> the newest row of its key (latest consent_at, then the later line)
    for members in groups.values():
        w = max(members, key=lambda i: (rows[i][1], rows[i][0]))
        for i in members:
            winner[i] = w
    match_bit = 1 << purposes.index("match")

    batch_key = os.urandom(32)
    batch_id = bytes.fromhex(a.batch_id) if a.batch_id else os.urandom(16)   # §5.2; fixed only in tests
    hdr = pb.BatchHeader(version=1, partner_id=a.partner, batch_id=batch_id, gateway_key_id=gw.id,
                         signer_key_id=sign.id, wrapped_key=SealedBox(PublicKey(gw.pub)).encrypt(batch_key),
                         aead=pb.AEAD_CHACHA20POLY1305_IETF, created_at=int(time.time()),
                         policy_hash=hashlib.sha256(raw).digest(), kind=0)
    out = [frame(hdr.SerializeToString())]
    index = packed = withdrawn = 0
    every = (1 << len(purposes)) - 1
    for i, r in enumerate(rows):
        if winner[i] != i:
            continue
        toks = [(k, token(match.key, k, r[3][k])) for k in (KIND_EMAIL, KIND_PHONE) if k in r[3]]
        # §5.10: a user whose kept row lacks match may be at the gateway (this packer keeps no state):
        # a withdrawal of every purpose, consent 0, instead of a record.
        lost = not r[2] & match_bit
        bits = 0 if lost else r[2]
        pt = pb.Withdrawal(withdrawn=every).SerializeToString() if lost else r[4]
        ad = record_ad(batch_id, a.partner, index, bits, r[1], toks)
        ct = crypto_aead_chacha20poly1305_ietf_encrypt(pt, ad, record_nonce(index), batch_key)
        rec = pb.SealedRecord(index=index, consent_bits=bits, consent_at=r[1], ciphertext=ct,
                              tokens=[pb.Token(kind=k, value=v) for k, v in toks], withdrawal=lost)
        withdrawn += lost
        packed += not lost
        b = rec.SerializeToString()
        if len(b) > RECORD_MAX:
            raise SpecError("record %d over the record frame limit" % index)
        out.append(frame(b))
        index += 1
    digest = hashlib.blake2b(b"".join(out), digest_size=32).digest()
    sig = SigningKey(sign.key[:32]).sign(signed_message(index, digest)).signature
    out.append(frame(pb.BatchTrailer(record_count=index, digest=digest, signature=sig).SerializeToString()))
    with open(a.out + ".tmp", "wb") as f:
        f.write(b"".join(out))
    os.rename(a.out + ".tmp", a.out)
    print(json.dumps({"rows": len(rows) + bad, "bad_rows": bad, "packed": packed, "withdrawn": withdrawn,
                      "batch_id": batch_id.hex(), "digest": digest.hex()}))


def pack_row(line, row, cols, purposes, rules, country):
    ids, bits, at, fields = {}, None, None, []
    for name, col in cols.items():
        v = row[name]
        role = col.get("role")
        if role == "local_id":
            continue
        if role == "identifier":
            if v.strip(" \t") == "":
                continue
            kind = KIND_EMAIL if col["kind"] == "email" else KIND_PHONE
            ids[kind] = normalize_email(v, rules) if kind == KIND_EMAIL else normalize_phone(v, country)
            continue
        if role == "consent":
            bits = 0
            if v.strip(" \t"):
                for p in v.split(";"):
                    p = p.strip(" \t")
                    if p not in purposes:
                        raise SpecError("unknown purpose")
                    bits |= 1 << purposes.index(p)
            continue
        if role == "consent_time":
            at = parse_time(v)
            continue
        if v == "":
            if col.get("required", True):
                raise SpecError("required")
            continue
        if col["type"] == "int":
            if not re.fullmatch(r"-?[0-9]+", v):
                raise SpecError("not an integer")
            n = int(v)
            if ("min" in col and n < col["min"]) or ("max" in col and n > col["max"]):
                raise SpecError("out of range")
            f = pb.Field(name=name, int_value=n)
        else:
            if col["type"] == "category" and v not in col["values"]:
                raise SpecError("not a category value")
            f = pb.Field(name=name, str_value=v)
        if shared(col):
            fields.append(f)
    if not ids or bits is None or at is None:
        raise SpecError("no identifier or consent")
    return [line, at, bits, ids, pb.RecordPayload(fields=fields).SerializeToString()]


# ---- §5.7 revocation batches ----------------------------------------------------------------

def revoke(a):
    """A revocation batch: one record per CSV row naming a user by its identifier columns."""
    raw = open(a.policy, "rb").read()
    pol = yaml.safe_load(raw)
    partner = next(p for p in pol["partners"] if p["id"] == a.partner)
    kinds = {c["name"]: (KIND_EMAIL if c["kind"] == "email" else KIND_PHONE)
             for c in partner["columns"] if c.get("role") == "identifier"}
    match = load_key(a.match_key, "match-key")
    sign = load_key(a.sign_key, "ed25519-secret")
    gw = load_key(a.gateway_pub, "x25519-public")
    now = int(a.now) if a.now else int(time.time())
    batch_key, batch_id = os.urandom(32), os.urandom(16)
    hdr = pb.BatchHeader(version=1, partner_id=a.partner, batch_id=batch_id, gateway_key_id=gw.id,
                         signer_key_id=sign.id, wrapped_key=SealedBox(PublicKey(gw.pub)).encrypt(batch_key),
                         aead=pb.AEAD_CHACHA20POLY1305_IETF, created_at=now,
                         policy_hash=hashlib.sha256(raw).digest(), kind=1)
    out = [frame(hdr.SerializeToString())]
    with open(a.input, newline="", encoding="utf-8-sig") as f:
        for index, row in enumerate(csv.DictReader(f)):
            ids = {}
            for name, cell in row.items():
                if name not in kinds:
                    raise SpecError("column %r is not an identifier column" % name)
                if cell.strip(" \t"):
                    k = kinds[name]
                    ids[k] = normalize_email(cell, pol.get("email", {})) if k == KIND_EMAIL else \
                        normalize_phone(cell, pol.get("default_phone_country", "CN"))
            toks = [(k, token(match.key, k, ids[k])) for k in (KIND_EMAIL, KIND_PHONE) if k in ids]
            if not toks:
                raise SpecError("row %d names no user" % (index + 2))
            ad = record_ad(batch_id, a.partner, index, 0, now, toks)
            ct = crypto_aead_chacha20poly1305_ietf_encrypt(b"", ad, record_nonce(index), batch_key)
            rec = pb.SealedRecord(index=index, consent_bits=0, consent_at=now, ciphertext=ct,
                                  tokens=[pb.Token(kind=k, value=v) for k, v in toks])
            out.append(frame(rec.SerializeToString()))
    n = len(out) - 1
    digest = hashlib.blake2b(b"".join(out), digest_size=32).digest()
    sig = SigningKey(sign.key[:32]).sign(signed_message(n, digest)).signature
    out.append(frame(pb.BatchTrailer(record_count=n, digest=digest, signature=sig).SerializeToString()))
    with open(a.out, "wb") as f:
        f.write(b"".join(out))
    print(json.dumps({"users": n, "batch_id": batch_id.hex()}))


# ---- §5.5 reading a batch ---------------------------------------------------------

def read(a):
    data = open(a.batch, "rb").read()
    fr = frames_of(data, lambda i: HEADER_MAX if i == 0 else RECORD_MAX)
    if len(fr) < 2:
        raise SpecError("no trailer")
    hdr = pb.BatchHeader.FromString(fr[0])
    tr = pb.BatchTrailer.FromString(fr[-1])
    if len(fr[-1]) > TRAILER_MAX or hdr.version != 1 or len(hdr.batch_id) != 16:
        raise SpecError("bad header or trailer")
    digest = hashlib.blake2b(data[:len(data) - 4 - len(fr[-1])], digest_size=32).digest()
    if tr.record_count != len(fr) - 2 or tr.digest != digest:
        raise SpecError("the digest or the count does not match the frames")
    signer = load_key(a.sign_pub, "ed25519-public")
    if hdr.signer_key_id != signer.id:
        raise SpecError("signed by another key")
    try:
        VerifyKey(signer.pub).verify(signed_message(tr.record_count, digest), tr.signature)
    except BadSignatureError:
        raise SpecError("the signature does not verify")
    if hdr.policy_hash != hashlib.sha256(open(a.policy, "rb").read()).digest():
        raise SpecError("packed under another policy")
    key = None
    if a.gateway_key:
        gk = load_key(a.gateway_key, "x25519-secret")
        if hdr.gateway_key_id != gk.id:
            raise SpecError("sealed to another gateway key")
        key = SealedBox(PrivateKey(gk.key)).decrypt(hdr.wrapped_key)
    for i, b in enumerate(fr[1:-1]):
        rec = pb.SealedRecord.FromString(b)
        if rec.index != i:
            raise SpecError("record index %d at position %d" % (rec.index, i))
        toks = [(t.kind, t.value) for t in rec.tokens]
        out = {"tokens": {str(k): v.hex() for k, v in toks}, "consent_bits": rec.consent_bits,
               "consent_at": rec.consent_at}
        if key is not None:
            ad = record_ad(hdr.batch_id, hdr.partner_id, i, rec.consent_bits, rec.consent_at, toks)
            pt = crypto_aead_chacha20poly1305_ietf_decrypt(rec.ciphertext, ad, record_nonce(i), key)
            if rec.withdrawal:      # §5.10
                out["withdrawn"] = pb.Withdrawal.FromString(pt).withdrawn
            else:
                out["fields"] = {f.name: (f.int_value if f.WhichOneof("value") == "int_value" else f.str_value)
                                 for f in pb.RecordPayload.FromString(pt).fields}
        if rec.withdrawal:
            out["withdrawal"] = True
        print(json.dumps(out, sort_keys=True))


# ---- §8.2 push ---------------------------------------------------------------------------

def push(a):
    import socket
    import ssl
    data = open(a.batch, "rb").read()
    host, port = a.gateway.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as conn:
            req = pb.Request(version=1, push=pb.PushRequest(size=len(data)))
            conn.sendall(frame(req.SerializeToString()) + data)
            hdr = b""
            while len(hdr) < 4:
                c = conn.recv(4 - len(hdr))
                if not c:
                    raise SpecError("the gateway closed the connection without an answer")
                hdr += c
            (n,) = struct.unpack(">I", hdr)
            body = b""
            while len(body) < n:
                c = conn.recv(n - len(body))
                if not c:
                    raise SpecError("the answer is cut short")
                body += c
    resp = pb.Response.FromString(body)
    if resp.WhichOneof("result") == "error":
        raise SpecError("gateway error %s: %s" % (resp.error.code, resp.error.message))
    r = resp.push
    print(json.dumps({"status": pb.PushStatus.Name(r.status), "records": r.records, "partner": r.partner,
                      "batch_id": r.batch_id.hex(), "digest": r.digest.hex()}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    for o in ("policy", "partner", "input", "out", "match-key", "sign-key", "gateway-pub"):
        p.add_argument("--" + o, required=True)
    p.add_argument("--batch-id", help="16 bytes in hex instead of a random id (tests of id reuse)")
    v = sub.add_parser("revoke")
    for o in ("policy", "partner", "input", "out", "match-key", "sign-key", "gateway-pub"):
        v.add_argument("--" + o, required=True)
    v.add_argument("--now", help="the revocation time, unix seconds (default: now)")
    r = sub.add_parser("read")
    r.add_argument("batch")
    r.add_argument("--policy", required=True)
    r.add_argument("--sign-pub", required=True)
    r.add_argument("--gateway-key")
    u = sub.add_parser("push")
    u.add_argument("batch")
    for o in ("gateway", "ca", "cert", "key"):
        u.add_argument("--" + o, required=True)
    a = ap.parse_args()
    try:
        {"pack": pack, "revoke": revoke, "read": read, "push": push}[a.cmd](a)
    except SpecError as e:
        sys.exit("packer: %s" % e)


if __name__ == "__main__":
    main()

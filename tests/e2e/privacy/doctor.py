#!/usr/bin/env python3
"""Doctor a crossgate output (CSV and its .meta.json) the way a buggy or
malicious export would, so that test_privacy.sh can show check_outputs.py
catches it.  Each mode breaks one property and keeps the rest consistent
(counts in the meta follow the rows), so the checker's message names that
one property.

    doctor.py MODE IN.csv OUT.csv [ARG]

Modes (IN a synthetic row export unless said otherwise):
  raw-value          a feature cell replaced by an exact value (ARG: column=value)
  add-pseudonym      a first column "pseudonym" of 32 hex digits per row
  meta-count         meta: "rows" set to ARG (an exact count of the subjects)
  laxer-noise        meta: the 1-way noise sigma halved (a release that says it added less noise)
  broken-tree        meta: the last edge of the tree dropped
  overlap-bins       meta: the first range bin of ARG (a column) widened over the next one
  row-count          the last row dropped, meta synthetic_rows left as it was
  raw-qi             a map-generalized cell replaced by a raw value, also listed as a bin (ARG: column=value)
  plant              a feature cell replaced by ARG (an email, a phone, a user id, a token)
  below-threshold    IN a query answer: its first count set to threshold - 1
  exact-count        IN a query answer: meta gains "subjects": ARG
"""
import secrets
import csv
import json
import sys


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with open(path + ".meta.json", encoding="utf-8") as f:
        meta = json.load(f)
    return rows[0], rows[1:], meta


def write(path, header, rows, meta):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    with open(path + ".meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


def bins_of(meta, col):
    return next(c["bins"] for c in meta["columns"] if c["name"] == col)


def main(mode, src, dst, arg=None):
    header, rows, meta = read(src)
    if mode == "raw-value":
        col, value = arg.split("=", 1)
        rows[0][header.index(col)] = value
    elif mode == "add-pseudonym":
        header = ["pseudonym"] + header
        rows = [[secrets.token_hex(16)] + r for r in rows]
    elif mode == "meta-count":
        meta["rows"] = int(arg)
    elif mode == "laxer-noise":
        meta["noise"]["one_way_sigma"] /= 2
    elif mode == "broken-tree":
        meta["edges"] = meta["edges"][:-1]
    elif mode == "overlap-bins":
        b = bins_of(meta, arg)
        lo, hi = b[0].split("-")
        nlo, nhi = b[1].split("-")
        b[0] = "%s-%s" % (lo, nlo if int(nlo) > int(hi) + 1 else int(hi) + 1)
    elif mode == "row-count":
        rows = rows[:-1]
    elif mode == "raw-qi":
        col, value = arg.split("=", 1)
        rows[0][header.index(col)] = value
        bins_of(meta, col).insert(0, value)
    elif mode == "plant":
        rows[len(rows) // 2][-1] = arg
    elif mode == "below-threshold":
        rows[0][header.index("count")] = str(meta["threshold"] - 1)
    elif mode == "exact-count":
        meta["subjects"] = int(arg)
    else:
        sys.exit("doctor.py: unknown mode '%s'" % mode)
    write(dst, header, rows, meta)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])

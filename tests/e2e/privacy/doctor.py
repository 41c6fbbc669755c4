#!/usr/bin/env python3
"""Doctor a crossgate output (CSV and its .meta.json) the way a buggy or
malicious export would, so that test_privacy.sh can show check_outputs.py
catches it.  Each mode breaks one property and keeps the rest consistent
(counts in the meta follow the rows), so the checker's message names that
one property.

    doctor.py MODE IN.csv OUT.csv [ARG]

Modes (IN a row export unless said otherwise):
  shrink-class       the smallest class cut to k-1 rows (meta rows/suppressed follow)
  uniform-sensitive  every row of one class given the same sensitive value
  over-limit         meta: suppressed set to 20% of the candidates
  laxer-k            meta: k set below the policy's (ARG: the k to state)
  dup-pseudonym      the second row given the first row's pseudonym
  share-pseudonym    IN's first pseudonym written into a copy of ARG (another export)
  raw-qi             a map-generalized cell replaced by a raw value (ARG: column=value)
  plant              a feature cell replaced by ARG (an email, a phone, a user id, a token)
  below-threshold    IN a query answer: its first count set to threshold - 1
  exact-count        IN a query answer: meta gains "subjects": ARG
"""
import collections
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


def classes(header, rows, meta):
    qi = [header.index(c) for c in meta["levels"]]
    out = collections.defaultdict(list)
    for n, r in enumerate(rows):
        out[tuple(r[i] for i in qi)].append(n)
    return out


def main(mode, src, dst, arg=None):
    header, rows, meta = read(src)
    if mode == "shrink-class":
        cls = min(classes(header, rows, meta).values(), key=len)
        drop = set(cls[meta["k"] - 1:])
        rows = [r for n, r in enumerate(rows) if n not in drop]
        meta["rows"] -= len(drop)
        meta["suppressed"] += len(drop)
    elif mode == "uniform-sensitive":
        col = header.index(meta["sensitive"][0])
        cls = max(classes(header, rows, meta).values(), key=len)
        for n in cls:
            rows[n][col] = rows[cls[0]][col]
    elif mode == "over-limit":
        meta["suppressed"] = meta["candidates"] // 5
        meta["candidates"] = meta["rows"] + meta["suppressed"]
    elif mode == "laxer-k":
        meta["k"] = int(arg)
    elif mode == "dup-pseudonym":
        rows[1][0] = rows[0][0]
    elif mode == "share-pseudonym":
        p = rows[0][0]
        header, rows, meta = read(arg)
        rows[-1][0] = p
    elif mode == "raw-qi":
        col, value = arg.split("=", 1)
        rows[0][header.index(col)] = value
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

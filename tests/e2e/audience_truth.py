#!/usr/bin/env python3
"""The users an audience rule must select, from a demo's own inputs (the evaluator's truth).

usage: audience_truth.py DEMO_DATA_DIR POLICY PARTNER RULE_KIND OUT.txt [consent-marketing-on=both]

Joins the partners' files as the red team's evaluator does (tests/e2e/redteam/rtdata.py:
email first, then phone), keeps the subjects whose newest rows consent to `marketing`
at both partners, applies the rule (one of the fixed rules the e2e test uses, written
here in Python), and writes PARTNER's user ids of the selected subjects, sorted, one a
line.  With RULE_KIND "noconsent" it writes instead PARTNER's user ids of matched
subjects that lack marketing consent on either side (who must never be delivered).
With RULE_KIND "segment:FILE:N" the rule is a segment (gateway/segment.h): the
subjects whose nearest centre of the released k-means FILE (and FILE.meta.json) is
cluster N, after the model's transform (clamp to the bounds, log1p if it used it,
the fixed point of model.h), written here again from the formulas.
"""
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "redteam"))
import rtdata  # noqa: E402

RULES = {
    "programming": lambda r: r.get("k_top_course_category") == "programming",
    "watch0": lambda r: isinstance(r.get("g_watch_minutes"), int) and r["g_watch_minutes"] >= 0,
    "watch600": lambda r: isinstance(r.get("g_watch_minutes"), int) and r["g_watch_minutes"] >= 600,
    "young_or_strategy": lambda r: r.get("age", 0) // 10 == 2 or (r.get("g_top_game_category") == "strategy"
                                                                   and not r.get("region") == "North"),
}


FIX = 4096


def coord(x, lo, hi, lg, exact):
    """model.h's fixed point of x: clamped, log1p or linear, scaled to [-F/2, F/2] (subjects rounded)."""
    x = min(max(x, lo), hi)
    if lg:
        u = (math.log1p(x) - math.log1p(lo)) / (math.log1p(hi) - math.log1p(lo))
    elif exact:
        return ((x - lo) * FIX + (hi - lo) // 2) // (hi - lo) - FIX // 2
    else:
        u = (x - lo) / (hi - lo)
    return math.floor(u * FIX + 0.5) - FIX // 2 if exact else u * FIX - FIX / 2


def segment_rule(path, cluster):
    meta = json.load(open(path + ".meta.json"))
    cols, lg = meta["columns"], meta["log1p"]
    bounds = [meta["bounds"][c] for c in cols]
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    cen = [(int(r[0]), [coord(float(v), b[0], b[1], lg, False) for v, b in zip(r[2:], bounds)]) for r in rows]

    def rule(r):
        if any(not isinstance(r.get(c), int) for c in cols):
            return False
        z = [coord(r[c], b[0], b[1], lg, True) for c, b in zip(cols, bounds)]
        best = min(cen, key=lambda ic: (sum((a - b) ** 2 for a, b in zip(z, ic[1])), ic[0]))
        return best[0] == cluster
    return rule


def main():
    ddir, policy, partner, kind, out = sys.argv[1:6]
    data = rtdata.Data(ddir, policy)
    if kind.startswith("segment:"):
        path, n = kind[len("segment:"):].rsplit(":", 1)
        rule = segment_rule(path, int(n))
    elif kind != "noconsent":
        rule = RULES[kind]

    def live(users):
        return {u: r for u, r in users.items() if "match" in r["consent"]}
    k, g = live(data.k), live(data.g)
    pairs, used_k, used_g = [], set(), set()
    for slot in (0, 1):
        by = {}
        for u, r in g.items():
            if u not in used_g and r["ids"][slot]:
                by.setdefault(r["ids"][slot], u)
        for u, r in sorted(k.items()):
            if u in used_k or not r["ids"][slot]:
                continue
            v = by.get(r["ids"][slot])
            if v is not None and v not in used_g:
                pairs.append((u, v))
                used_k.add(u)
                used_g.add(v)
    ids = []
    for u, v in pairs:
        both = "marketing" in k[u]["consent"] and "marketing" in g[v]["consent"]
        row = dict(k[u]["vals"])
        row.update({c: x for c, x in g[v]["vals"].items() if c.startswith("g_")})
        if kind == "noconsent":
            take = not both
        else:
            take = both and rule(row)
        if take:
            ids.append(u if partner == "k" else v)
    with open(out, "w") as f:
        for i in sorted(ids):
            f.write(i + "\n")


if __name__ == "__main__":
    main()

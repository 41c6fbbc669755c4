#!/usr/bin/env python3
"""The users an audience rule must select, from a demo's own inputs (the evaluator's truth).

usage: audience_truth.py DEMO_DATA_DIR POLICY PARTNER RULE_KIND OUT.txt [consent-marketing-on=both]

Joins the partners' files as the red team's evaluator does (tests/e2e/redteam/rtdata.py:
email first, then phone), keeps the subjects whose newest rows consent to `marketing`
at both partners, applies the rule (one of the fixed rules the e2e test uses, written
here in Python), and writes PARTNER's user ids of the selected subjects, sorted, one a
line.  With RULE_KIND "noconsent" it writes instead PARTNER's user ids of matched
subjects that lack marketing consent on either side (who must never be delivered).
"""
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


def main():
    ddir, policy, partner, kind, out = sys.argv[1:6]
    data = rtdata.Data(ddir, policy)

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
            take = both and RULES[kind](row)
        if take:
            ids.append(u if partner == "k" else v)
    with open(out, "w") as f:
        for i in sorted(ids):
            f.write(i + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Outcomes whose per-arm aggregates the lift must reproduce exactly (at a rho so large
that the noise rounds away), and those aggregates.

usage: campaign_exact.py AUDIENCE_IDS TREATMENT_CSV OTHERS_CSV OUT.csv SEED VALUE_CAP

As campaign_sim.py, the audience's users are split by the partner's treatment list.
Each subject converts with probability 0.4; a converter has one to three converting
outcomes of 30 to 80 cents each (their sum, often above VALUE_CAP, must be clamped
per subject), and may also have a non-converting outcome.  Outcomes that must NOT
count: a conversion dated 2020 (before the experiment), one dated 2099 (after the
lift), and conversions of users outside the audience.  Prints the exact aggregates
the lift must find: "n_c conv_c sum_c n_t conv_t sum_t".
"""
import csv
import datetime
import random
import sys


def main():
    aud_path, treat_path, others_path, out_path, seed, cap = sys.argv[1:7]
    rng, cap = random.Random(int(seed)), int(cap)
    audience = sorted({x.strip() for x in open(aud_path) if x.strip()})
    with open(treat_path, newline="") as f:
        treated = {r["user_id"] for r in csv.DictReader(f)}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    agg = {0: [0, 0, 0], 1: [0, 0, 0]}
    rows = []
    for u in audience:
        arm = 1 if u in treated else 0
        agg[arm][0] += 1
        if rng.random() < 0.4:
            vals = [rng.randint(30, 80) for _ in range(rng.randint(1, 3))]
            rows += [(u, 1, v, now) for v in vals]
            agg[arm][1] += 1
            agg[arm][2] += min(sum(vals), cap)
        if rng.random() < 0.3:
            rows.append((u, 0, 0, now))
        if rng.random() < 0.2:
            rows.append((u, 1, 77, "2020-01-01T00:00:00Z"))
        if rng.random() < 0.2:
            rows.append((u, 1, 55, "2099-01-01T00:00:00Z"))
    aud = set(audience)
    with open(others_path, newline="") as f:
        for r in csv.DictReader(f):
            if r["user_id"] not in aud and rng.random() < 0.3:
                rows.append((r["user_id"], 1, 40, now))
    rng.shuffle(rows)
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user_id", "converted", "value_cents", "at"])
        w.writerows(rows)
    print(*agg[0], *agg[1])


if __name__ == "__main__":
    main()

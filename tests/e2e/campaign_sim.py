#!/usr/bin/env python3
"""A simulated campaign's outcomes, as the campaign partner would report them.

usage: campaign_sim.py AUDIENCE_IDS TREATMENT_CSV OUT.csv SEED P_CONTROL P_TREATMENT [OTHERS_CSV]

AUDIENCE_IDS: the partner's user ids in the audience, one a line (the generator's
truth: audience_truth.py).  TREATMENT_CSV: the experiment's delivery as the
partner's agent opened it (header user_id): the users the campaign reached.  The
others of the audience are the control arm (the partner cannot tell them apart;
the helper can, from the truth).  Each user converts with the probability of its
arm, drawn from random.Random(SEED); a converter's value is uniform in
[500, 3000] cents (mean 1750).  Outcomes are dated now (inside the experiment's
window).  Two kinds of outcome must not count and are written too:
  - every control user also converts at 2020-01-01, before the experiment: a lift
    that counted outcomes before its window would see control converting at 100%;
  - with OTHERS_CSV (the partner's full user file), users outside the audience
    convert at 50%: they are no subject of the experiment.
Prints the planted lifts: "rate_diff VALUE" and "value_diff CENTS" (per subject).
"""
import csv
import datetime
import random
import sys

VALUE_LO, VALUE_HI = 500, 3000


def main():
    aud_path, treat_path, out_path, seed, p_c, p_t = sys.argv[1:7]
    others = sys.argv[7] if len(sys.argv) > 7 else None
    rng = random.Random(int(seed))
    p = {0: float(p_c), 1: float(p_t)}
    audience = [x.strip() for x in open(aud_path) if x.strip()]
    with open(treat_path, newline="") as f:
        treated = {r["user_id"] for r in csv.DictReader(f)}
    if not treated <= set(audience):
        sys.exit("campaign_sim: a treated user is not in the audience")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user_id", "converted", "value_cents", "at"])
        for u in sorted(audience):
            arm = 1 if u in treated else 0
            if rng.random() < p[arm]:
                w.writerow([u, 1, rng.randint(VALUE_LO, VALUE_HI), now])
            else:
                w.writerow([u, 0, 0, now])
            if arm == 0:
                w.writerow([u, 1, VALUE_HI, "2020-01-01T00:00:00Z"])
        if others:
            aud = set(audience)
            with open(others, newline="") as g:
                for r in csv.DictReader(g):
                    u = r["user_id"]
                    if u not in aud and rng.random() < 0.5:
                        w.writerow([u, 1, VALUE_HI, now])
    mean = (VALUE_LO + VALUE_HI) / 2
    print("rate_diff %.6f" % (p[1] - p[0]))
    print("value_diff %.6f" % ((p[1] - p[0]) * mean))


if __name__ == "__main__":
    main()

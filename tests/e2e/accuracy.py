#!/usr/bin/env python3
"""Accuracy of the demo's DP analyses against what the generator planted.

Runs `crossgate demo --offline --seed S` for S = 1..RUNS (fresh data, keys and
noise every run), reads out/report.json (built from the DP releases only:
ridge rho 0.6, k-means 0.15, affinity 0.05; with the synthetic rows, 0.1,
rho 0.9, and with the marketing loop's 0.1, rho 1 in all) and
data/truth.json, and prints:
  - the share of runs with alpha (T^K) and beta (T^G) within 10% of 20 and 5
    (target >= 80%);
  - the coverage of each coefficient's 95% interval (gamma = 0.3, alpha,
    beta; target >= 90%);
  - the worst segment-share error over the runs, in points (target <= 3),
    each released segment matched to the planted one with the nearest
    medians (log scale);
  - the programming -> strategy lift, lowest over the runs (target > 2).
With --check the targets are asserted (exit status 1 if one is missed).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

TARGET = {"k_course_spend_cents": "gamma", "k_learning_minutes": "alpha", "g_watch_minutes": "beta"}


def run_one(crossgate, users, seed, workdir):
    d = os.path.join(workdir, "run")
    if os.path.exists(d):
        shutil.rmtree(d)
    subprocess.run([crossgate, "demo", "--offline", "--dir", d, "--users", str(users), "--seed", str(seed),
                    "--json"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "out", "report.json")) as f:
        rep = json.load(f)
    with open(os.path.join(d, "data", "truth.json")) as f:
        truth = json.load(f)["planted"]
    return rep, truth


def segment_errors(rep, truth):
    """Largest |released share - planted share| in points, matching by nearest log medians."""
    segs = rep["dp_segments"]["segments"]
    planted = truth["segments"]
    worst = 0.0
    used = set()
    for s in segs:
        c = s["center"]
        best, bd = None, float("inf")
        for i, p in enumerate(planted):
            dd = ((math.log1p(c["k_learning_minutes"]) - math.log1p(p["learn_median"])) ** 2 +
                  (math.log1p(c["g_watch_minutes"]) - math.log1p(p["watch_median"])) ** 2 +
                  (math.log1p(c["g_streams_followed"]) - math.log1p(p["streams_median"])) ** 2)
            if dd < bd:
                best, bd = i, dd
        if best in used:
            return 100.0   # two segments on one planted segment: a failure to find the structure
        used.add(best)
        worst = max(worst, abs(s["share"] - planted[best]["share"]) * 100)
    if len(used) != len(planted):
        return 100.0
    return worst


def lift(rep, truth):
    aff = rep["affinity"]
    for p in aff["pairs"]:
        if p["course"] == truth["affinity"]["course"] and p["game"] == truth["affinity"]["game"]:
            return p["lift"] if p["lift"] is not None else 0.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crossgate", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--users", type=int, default=50000)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()

    within = 0
    cover = {"gamma": 0, "alpha": 0, "beta": 0}
    seg_worst, lifts, rel = [], [], {"alpha": [], "beta": []}
    work = tempfile.mkdtemp(prefix="cg-accuracy-")
    try:
        for i in range(a.runs):
            seed = a.first_seed + i
            rep, truth = run_one(a.crossgate, a.users, seed, work)
            mix = rep["dp_content_mix"]
            coefs = {c["feature"]: c for c in mix["coefficients"]}
            ok = True
            for feat, name in TARGET.items():
                c = coefs[feat]
                planted = truth["coefficients"][feat]
                if c["ci95_low"] <= planted <= c["ci95_high"]:
                    cover[name] += 1
                if name in ("alpha", "beta"):
                    r = (c["coef"] - planted) / planted
                    rel[name].append(r)
                    ok = ok and abs(r) <= 0.10
            within += ok
            seg_worst.append(segment_errors(rep, truth))
            lifts.append(lift(rep, truth))
            print("run %2d (seed %d): alpha %.3f beta %.3f gamma %.4f  segments worst %.2f pts  lift %.2f  rho %s"
                  % (i + 1, seed, coefs["k_learning_minutes"]["coef"], coefs["g_watch_minutes"]["coef"],
                     coefs["k_course_spend_cents"]["coef"], seg_worst[-1], lifts[-1],
                     mix["rho"] + rep["dp_segments"]["rho"] + (rep["affinity_rho"] or 0)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = a.runs
    print()
    print("runs                               %d (users %d per platform, seeds %d..%d)"
          % (n, a.users, a.first_seed, a.first_seed + n - 1))
    print("alpha and beta within 10%%         %.0f%% of runs (target >= 80%%)" % (100.0 * within / n))
    for name in ("gamma", "alpha", "beta"):
        print("coverage of %-5s 95%% interval     %.0f%% of runs (target >= 90%%)" % (name, 100.0 * cover[name] / n))
    print("mean |error| alpha, beta           %.2f%%, %.2f%%" % (
        100 * sum(abs(x) for x in rel["alpha"]) / n, 100 * sum(abs(x) for x in rel["beta"]) / n))
    print("segment shares, worst error        %.2f points (mean of per-run worst %.2f; target <= 3)"
          % (max(seg_worst), sum(seg_worst) / n))
    print("programming -> strategy lift       min %.2f, mean %.2f (target > 2)" % (min(lifts), sum(lifts) / n))

    if a.check:
        bad = []
        if within < 0.8 * n:
            bad.append("alpha/beta within 10%")
        for name in cover:
            if cover[name] < 0.9 * n:
                bad.append("coverage of " + name)
        if max(seg_worst) > 3:
            bad.append("segment shares")
        if min(lifts) <= 2:
            bad.append("lift")
        if bad:
            print("MISSED: " + ", ".join(bad))
            return 1
        print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

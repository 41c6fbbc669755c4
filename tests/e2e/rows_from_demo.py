#!/usr/bin/env python3
"""Exact joined rows of a demo, in the row layout `crossgate analytics --input` reads.

crossgate releases no exact rows (its row channel is DP synthetic data), but
the analytics core still fits its models on any row file an analyst holds.
The tests of those row models (against scikit-learn, and the planted
structure) need exact rows with the demo's planted structure, so this script
builds them the way an evaluator would, from the demo's own inputs: the
red team's join (tests/e2e/redteam/rtdata.py), subjects consenting to
analytics on both sides, each row under a random pseudonym.

usage: rows_from_demo.py DEMO_DATA_DIR POLICY OUT.csv
"""
import csv
import os
import secrets
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "redteam"))
import rtdata  # noqa: E402

COLS = ["age", "region", "k_course_spend_cents", "k_learning_minutes", "k_courses_bought",
        "k_top_course_category", "k_conversion_value_cents", "g_watch_minutes", "g_gift_spend_cents",
        "g_streams_followed", "g_top_game_category"]


def main():
    data = rtdata.Data(sys.argv[1], sys.argv[2])
    with open(sys.argv[3], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pseudonym"] + COLS)
        for row in data.members:
            w.writerow([secrets.token_hex(16)] + [row.get(c, "") for c in COLS])
    print("%d rows" % len(data.members))


if __name__ == "__main__":
    main()

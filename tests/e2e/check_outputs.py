#!/usr/bin/env python3
"""An independent checker of what crossgate lets out: row exports and query answers.

Written from the specification (issue 6, gateway/export.h and gateway/query.h
as contracts), not from the export or query code, so that a bug there is not
shared here.  Standard library only.

    python3 check_outputs.py --k 10 --l 3 --suppression-limit 0.05 --threshold 20 \
        --input k_users.csv --input g_viewers.csv [--exact N ...] \
        [--band age=10,20,40] [--map region=North,East,...] [--min-sigma 1] \
        --export X.csv [--export Y.csv ...] --query Q.csv [--query R.csv ...]

Every export CSV must have X.csv.meta.json next to it, every query CSV its
Q.csv.meta.json.  The policy's values on the command line are the floor: a
meta file may state a stricter k, l or limit (a policy copy may ask for more),
never a laxer one, and the files are checked against the stricter of the two.

Row exports:
  - the layout: pseudonym, the quasi-identifiers (exactly the meta "levels"
    keys), then "<left>_..." / "<right>_..." feature columns;
  - every equivalence class (rows with equal quasi-identifiers) has >= k rows
    and >= l distinct non-empty values of every meta "sensitive" column;
  - rows == data rows, candidates == rows + suppressed, and
    suppressed <= suppression_limit * candidates;
  - with --band/--map, each quasi-identifier cell is a value of the hierarchy
    level the meta names (aligned band "lo-hi" of that width, a map group, or
    '*' at the top);
  - pseudonyms are 32 lowercase hex digits, unique in an export, and no
    pseudonym is in two exports.
Query answers:
  - every released count >= threshold, and as many rows as meta "released";
  - the meta holds only the documented provenance fields, and no number given
    with --exact (the exact number of subjects, say) appears in it;
  - when the group keys come from the data (partition selection), the meta
    does not publish how many keys the data holds beyond those released;
  - the noise: sigma of the count's discrete Gaussian is sqrt(m / (2 rho)),
    m the statistics measured (the count and each summed column); with
    --min-sigma it must be at least that.
Every file: no cell (and no string in a meta file) holds an email address, a
phone-number-like string, a 64-hex or 32-byte base64 token, nor any user id,
email or phone of the --input CSVs.

Exit status: 0 all good, 1 violations (one line each, "FILE[:LINE]: what"),
2 unusable arguments or files.
"""
import argparse
import collections
import csv
import json
import math
import os
import re
import sys

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digits with phone punctuation; judged by its digits below.
PHONE_RUN = re.compile(r"\+?\(?\d[\d ().-]{8,}\d")
MOBILE_CN = re.compile(r"(86)?1[3-9]\d{9}")
HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
B64_32 = re.compile(r"[A-Za-z0-9+/]{43}=")
PSEUDONYM = re.compile(r"[0-9a-f]{32}")
BAND = re.compile(r"(-?\d+)-(-?\d+)")

# Provenance fields gateway/query.h documents; anything else could carry data.
QUERY_META_KEYS = {
    "query_id", "purpose", "analyst", "dataset", "group_by", "metrics", "mechanism", "rho", "epsilon",
    "threshold", "groups", "released", "suppressed", "partition_selection", "delta", "remaining_rho",
    "policy_hash", "audit_index", "created", "left", "right",
}
EXPORT_META_KEYS = {
    "export_id", "purpose", "analyst", "k", "l", "sensitive", "suppression_limit", "rows", "suppressed",
    "candidates", "levels", "policy_hash", "audit_index", "created", "left", "right",
}
# Meta strings that are hex by design: the policy's hash (public), the output's id.
HEX_BY_DESIGN = {"policy_hash", "export_id", "query_id"}


class Unusable(Exception):
    """An argument or input file the checker cannot work with (exit 2)."""


class Checker:
    def __init__(self, args):
        self.args = args
        self.violations = []
        self.user_ids = set()
        self.emails = set()
        self.phones = set()           # last 11 digits
        self.seen_pseudonyms = {}     # pseudonym -> export file
        self.bands = parse_hierarchies(args.band, "band", int)
        self.maps = parse_hierarchies(args.map, "map", str)
        self.summary = []

    def fail(self, where, what):
        self.violations.append("%s: %s" % (where, what))

    # --- identifiers of the input, to look for in every output -------------------
    def load_inputs(self):
        for path in self.args.input:
            with open_text(path) as f:
                for row in csv.DictReader(f):
                    uid = (row.get("user_id") or "").strip()
                    if len(uid) >= 3:
                        self.user_ids.add(uid)
                    email = (row.get("email") or "").strip().lower()
                    if "@" in email:
                        self.emails.add(email)
                    digits = re.sub(r"\D", "", row.get("phone") or "")
                    if len(digits) >= 10:
                        self.phones.add(digits[-11:])
        return len(self.user_ids) + len(self.emails) + len(self.phones)

    def check_text(self, where, text, what="cell"):
        """Everything that identifies a person or a record, looked for in one string."""
        if not text:
            return
        if EMAIL.search(text):
            self.fail(where, "%s holds an email address" % what)
        for run in PHONE_RUN.findall(text):
            digits = re.sub(r"\D", "", run)
            punct = digits != run.lstrip("+") or run.startswith("+")
            if len(digits) >= 11 and (punct or MOBILE_CN.fullmatch(digits)):
                self.fail(where, "%s holds a phone-number-like string" % what)
                break
        if HEX64.search(text):
            self.fail(where, "%s holds a 64-hex-digit token" % what)
        if B64_32.search(text):
            self.fail(where, "%s holds a base64 32-byte token" % what)
        low = text.lower()
        for tok in re.findall(r"[^\s,;\"'<>()\[\]]+", low):
            if tok in self.emails:
                self.fail(where, "%s holds an email address of the input" % what)
        for tok in re.findall(r"[A-Za-z0-9_]+", text):
            if tok in self.user_ids:
                self.fail(where, "%s holds a user id of the input" % what)
        if self.phones:
            for run in re.findall(r"[\d +().-]{10,}", text):
                digits = re.sub(r"\D", "", run)
                for i in range(0, max(0, len(digits) - 10)):
                    if digits[i:i + 11] in self.phones:
                        self.fail(where, "%s holds a phone number of the input" % what)
                        return

    def check_meta_strings(self, path, meta):
        def walk(v, key):
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    self.check_text(path, str(k2), "meta key")
                    walk(v2, k2)
            elif isinstance(v, list):
                for v2 in v:
                    walk(v2, key)
            elif isinstance(v, str) and key not in HEX_BY_DESIGN:
                self.check_text(path, v, "meta field '%s'" % key)
        walk(meta, None)

    # --- row exports --------------------------------------------------------------
    def floor_check(self, path, meta, key, floor, stricter):
        """The meta's value must be as strict as the policy's; returns the stricter."""
        v = meta.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            self.fail(path, "meta '%s' is missing or not a number" % key)
            return floor
        if floor is not None and not stricter(v, floor):
            self.fail(path, "meta %s = %s is laxer than the policy's %s" % (key, v, floor))
            return floor
        return v

    def meta_of(self, path, documented):
        """The output's meta file, any field beyond the documented ones a violation (it could carry data)."""
        meta = load_meta(path)
        mpath = path + ".meta.json"
        for key in sorted(set(meta) - documented):
            self.fail(mpath, "meta key '%s' is not a documented provenance field" % key)
        return meta, mpath

    def check_export(self, path):
        meta, mpath = self.meta_of(path, EXPORT_META_KEYS)
        a = self.args
        k = self.floor_check(mpath, meta, "k", a.k, lambda v, f: v >= f)
        l_ = self.floor_check(mpath, meta, "l", a.l, lambda v, f: v >= f)
        limit = self.floor_check(mpath, meta, "suppression_limit", a.suppression_limit,
                                 lambda v, f: v <= f + 1e-12)
        levels = meta.get("levels")
        sensitive = meta.get("sensitive")
        left, right = meta.get("left"), meta.get("right")
        if not isinstance(levels, dict) or not levels:
            raise Unusable("%s: meta 'levels' is missing or empty" % mpath)
        if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
            raise Unusable("%s: meta 'sensitive' is not a list of column names" % mpath)
        if not isinstance(left, str) or not isinstance(right, str):
            raise Unusable("%s: meta 'left'/'right' missing" % mpath)
        self.check_meta_strings(mpath, meta)

        header, rows = read_csv(path)
        if not header or header[0] != "pseudonym":
            self.fail(path + ":1", "the first column is not 'pseudonym'")
            return
        prefixes = (left + "_", right + "_")
        first_feature = next((i for i, c in enumerate(header) if c.startswith(prefixes)), len(header))
        qis = header[1:first_feature]
        if set(qis) != set(levels) or len(qis) != len(levels):
            self.fail(path + ":1", "quasi-identifier columns %s are not the meta's levels %s" %
                      (qis, sorted(levels)))
        for c in header[first_feature:]:
            if not c.startswith(prefixes):
                self.fail(path + ":1", "column '%s' after the features is not a partner's feature" % c)
        for s in sensitive:
            if s not in header:
                self.fail(path + ":1", "sensitive column '%s' is not in the export" % s)
        sens_idx = [header.index(s) for s in sensitive if s in header]
        qi_idx = list(range(1, first_feature))

        # Counts.
        n = len(rows)
        rows_meta, sup, cand = meta.get("rows"), meta.get("suppressed"), meta.get("candidates")
        if not all(isinstance(x, int) and x >= 0 for x in (rows_meta, sup, cand)):
            self.fail(mpath, "meta rows/suppressed/candidates are not counts")
        else:
            if rows_meta != n:
                self.fail(mpath, "meta rows = %d but the CSV has %d data rows" % (rows_meta, n))
            if cand != rows_meta + sup:
                self.fail(mpath, "meta candidates = %d is not rows + suppressed = %d" % (cand, rows_meta + sup))
            # integer comparison: suppressed / candidates <= limit
            if cand > 0 and sup > limit * cand + 1e-9:
                self.fail(mpath, "suppressed %d of %d candidates (%.2f%%) is above the suppression limit of %.2f%%"
                          % (sup, cand, 100.0 * sup / cand, 100.0 * limit))
            if cand == 0 and sup > 0:
                self.fail(mpath, "suppressed %d of 0 candidates" % sup)

        # Rows: shape, pseudonyms, identifiers, generalization.
        classes = collections.defaultdict(list)
        mine = {}
        for line, row in rows:
            where = "%s:%d" % (path, line)
            if len(row) != len(header):
                self.fail(where, "%d fields, the header has %d" % (len(row), len(header)))
                continue
            p = row[0]
            if not PSEUDONYM.fullmatch(p):
                self.fail(where, "pseudonym '%s' is not 32 lowercase hex digits" % p[:40])
            elif p in mine:
                self.fail(where, "pseudonym %s repeats line %d of the same export" % (p, mine[p]))
            else:
                mine[p] = line
                other = self.seen_pseudonyms.get(p)
                if other is not None and other != path:
                    self.fail(where, "pseudonym %s is also in the export %s" % (p, other))
            # (a well-formed pseudonym is random hex: its digit runs would look like phone numbers by chance)
            for i, cell in enumerate(row):
                if i > 0 or not PSEUDONYM.fullmatch(cell):
                    self.check_text("%s (%s)" % (where, header[i]), cell)
            for i in qi_idx:
                self.check_level(where, header[i], row[i], levels.get(header[i]))
            classes[tuple(row[i] for i in qi_idx)].append((line, row))
        for p in mine:
            self.seen_pseudonyms.setdefault(p, path)

        # k-anonymity and l-diversity, class by class.
        for key, members in sorted(classes.items()):
            label = ", ".join("%s=%s" % (header[i], v) for i, v in zip(qi_idx, key))
            first = members[0][0]
            if len(members) < k:
                self.fail("%s:%d" % (path, first), "equivalence class (%s) has %d rows, below k = %d" %
                          (label, len(members), k))
            for i in sens_idx:
                distinct = {r[i] for _, r in members if r[i] != ""}
                if len(distinct) < l_:
                    self.fail("%s:%d" % (path, first), "equivalence class (%s) has %d distinct values of "
                              "sensitive column '%s', below l = %d" % (label, len(distinct), header[i], l_))
        self.summary.append("%s: %d rows, %d classes (smallest %d), k=%s l=%s, suppressed %s of %s, levels %s"
                            % (os.path.basename(path), n, len(classes),
                               min((len(m) for m in classes.values()), default=0), k, l_, sup, cand,
                               json.dumps(levels, sort_keys=True)))

    def check_level(self, where, col, value, level):
        if not isinstance(level, int) or isinstance(level, bool) or level < 0:
            self.fail(where, "meta level of '%s' is not a level number" % col)
            return
        if col in self.bands:
            widths = self.bands[col]
            if level > len(widths):
                self.fail(where, "'%s' level %d is above the hierarchy's top (%d)" % (col, level, len(widths)))
            elif level == len(widths):
                if value != "*":
                    self.fail(where, "'%s' = '%s' at the top level, not '*'" % (col, value))
            else:
                w = widths[level]
                m = BAND.fullmatch(value)
                if not m or int(m.group(1)) % w != 0 or int(m.group(2)) != int(m.group(1)) + w - 1:
                    self.fail(where, "'%s' = '%s' is not a band of width %d (level %d)" % (col, value, w, level))
        elif col in self.maps:
            if level > 1:
                self.fail(where, "'%s' level %d is above a map's top (1)" % (col, level))
            elif level == 1 and value != "*":
                self.fail(where, "'%s' = '%s' at the top level, not '*'" % (col, value))
            elif level == 0 and value not in self.maps[col]:
                self.fail(where, "'%s' = '%s' is not one of the map's groups" % (col, value))

    # --- query answers ------------------------------------------------------------
    def check_query(self, path):
        meta, mpath = self.meta_of(path, QUERY_META_KEYS)
        a = self.args
        for key in ("threshold", "remaining_rho", "group_by", "metrics", "mechanism", "released"):
            if key not in meta:
                self.fail(mpath, "meta lacks '%s'" % key)
        threshold = self.floor_check(mpath, meta, "threshold", a.threshold, lambda v, f: v >= f)
        self.check_meta_strings(mpath, meta)

        # No exact number about the data: none of the --exact values, anywhere.
        exact = set(a.exact)

        def numbers(v, key):
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    yield from numbers(v2, k2)
            elif isinstance(v, list):
                for v2 in v:
                    yield from numbers(v2, key)
            elif isinstance(v, bool):
                return
            elif isinstance(v, (int, float)):
                yield key, v
            elif isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v):
                yield key, float(v)
        for key, v in numbers(meta, None):
            if key != "audit_index" and v in exact:
                self.fail(mpath, "meta field '%s' = %s is an exact count of the data" % (key, v))

        # Keys taken from the data: only the released ones may be told.
        if meta.get("partition_selection") is True:
            groups, released, sup = meta.get("groups"), meta.get("released"), meta.get("suppressed")
            if isinstance(groups, int) and isinstance(released, int) and groups != released:
                self.fail(mpath, "partition selection, yet meta 'groups' = %d tells how many keys the data "
                          "holds (%d more than released): an exact count no noise protects" %
                          (groups, groups - released))
            if isinstance(sup, int) and sup != 0:
                self.fail(mpath, "partition selection, yet meta 'suppressed' = %d counts keys found in the "
                          "data and withheld: an exact count no noise protects" % sup)

        # The noise scale of the count.
        sigma = None
        metrics = meta.get("metrics") or []
        summed = {m.split(":", 1)[1] for m in metrics if isinstance(m, str) and m.split(":", 1)[0] in ("sum", "mean")}
        m_stats = 1 + len(summed)
        try:
            if meta.get("mechanism") == "discrete-laplace":
                eps = float(meta["epsilon"])
                sigma = math.sqrt(2.0) * m_stats / eps       # Laplace scale m/eps, sd sqrt(2) * scale
            else:
                rho = float(meta["rho"])
                sigma = math.sqrt(m_stats / (2.0 * rho))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            self.fail(mpath, "meta has no usable rho (or epsilon) to tell the noise scale")
        if sigma is not None and a.min_sigma is not None and sigma < a.min_sigma:
            self.fail(mpath, "count noise sigma %.3f is below %.3f" % (sigma, a.min_sigma))

        header, rows = read_csv(path)
        if "count" not in header:
            self.fail(path + ":1", "no 'count' column")
            return
        ci = header.index("count")
        gb = meta.get("group_by") or []
        if header[:ci] != list(gb) and not any(m.startswith("histogram:") for m in metrics if isinstance(m, str)):
            self.fail(path + ":1", "group columns %s are not the meta's group_by %s" % (header[:ci], gb))
        if isinstance(meta.get("released"), int) and meta["released"] != len(rows):
            self.fail(mpath, "meta released = %d but the CSV has %d rows" % (meta["released"], len(rows)))
        for line, row in rows:
            where = "%s:%d" % (path, line)
            if len(row) != len(header):
                self.fail(where, "%d fields, the header has %d" % (len(row), len(header)))
                continue
            for i, cell in enumerate(row):
                self.check_text("%s (%s)" % (where, header[i]), cell)
            try:
                c = int(row[ci])
            except ValueError:
                self.fail(where, "count '%s' is not an integer" % row[ci])
                continue
            if c < threshold:
                self.fail(where, "released count %d is below the threshold %d" % (c, threshold))
        self.summary.append("%s: %d groups released, threshold %s, count sigma %s" %
                            (os.path.basename(path), len(rows), threshold,
                             "%.3f" % sigma if sigma is not None else "?"))


def parse_hierarchies(specs, what, conv):
    out = {}
    for s in specs:
        col, sep, vals = s.partition("=")
        if not sep or not col or not vals:
            raise Unusable("--%s %s: expected COL=V1,V2,..." % (what, s))
        try:
            out[col] = [conv(v) for v in vals.split(",")]
        except ValueError:
            raise Unusable("--%s %s: not a list of numbers" % (what, s))
    return out


def open_text(path):
    try:
        return open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise Unusable("%s: %s" % (path, e.strerror))


def load_meta(path):
    mpath = path + ".meta.json"
    with open_text(mpath) as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise Unusable("%s:%d:%d: not JSON: %s" % (mpath, e.lineno, e.colno, e.msg))
    if not isinstance(meta, dict):
        raise Unusable("%s: not a JSON object" % mpath)
    return meta


def read_csv(path):
    """(header, [(line, row)]): line numbers as a text editor shows them."""
    with open_text(path) as f:
        r = csv.reader(f)
        try:
            header = next(r)
        except StopIteration:
            raise Unusable("%s: empty file" % path)
        except csv.Error as e:
            raise Unusable("%s:1: %s" % (path, e))
        rows = []
        try:
            start = r.line_num + 1
            for row in r:
                rows.append((start, row))
                start = r.line_num + 1
        except csv.Error as e:
            raise Unusable("%s:%d: %s" % (path, r.line_num, e))
    return header, rows


def main(argv):
    ap = argparse.ArgumentParser(description="Independent checker of crossgate's exports and query answers.")
    ap.add_argument("--export", action="append", default=[], help="a row export CSV (with CSV.meta.json)")
    ap.add_argument("--query", action="append", default=[], help="a query answer CSV (with CSV.meta.json)")
    ap.add_argument("--input", action="append", default=[], help="an input CSV whose identifiers must not leak")
    ap.add_argument("--k", type=int, help="the policy's k")
    ap.add_argument("--l", type=int, help="the policy's l")
    ap.add_argument("--suppression-limit", type=float, help="the policy's suppression limit (share, 0..1)")
    ap.add_argument("--threshold", type=int, help="the policy's query threshold")
    ap.add_argument("--exact", type=float, action="append", default=[], help="an exact count that must not be told")
    ap.add_argument("--band", action="append", default=[], help="COL=W1,W2,...: a band hierarchy")
    ap.add_argument("--map", action="append", default=[], help="COL=G1,G2,...: a map's groups")
    ap.add_argument("--min-sigma", type=float, help="smallest acceptable noise sigma of a count")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not a.export and not a.query:
        ap.error("nothing to check: give --export and/or --query")
    if a.export and (a.k is None or a.l is None or a.suppression_limit is None):
        ap.error("exports need the policy's --k, --l and --suppression-limit")
    if a.query and a.threshold is None:
        ap.error("queries need the policy's --threshold")
    try:
        c = Checker(a)
        if a.input and c.load_inputs() == 0:
            raise Unusable("the --input files hold no user id, email or phone to look for")
        for p in a.export:
            c.check_export(p)
        for p in a.query:
            c.check_query(p)
    except Unusable as e:
        print("check_outputs: cannot check: %s" % e, file=sys.stderr)
        return 2
    for v in c.violations:
        print("check_outputs: FAIL %s" % v, file=sys.stderr)
    if c.violations:
        print("check_outputs: %d violations" % len(c.violations), file=sys.stderr)
        return 1
    if not a.quiet:
        for s in c.summary:
            print("check_outputs: ok %s" % s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

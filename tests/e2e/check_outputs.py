#!/usr/bin/env python3
"""An independent checker of what crossgate lets out: row exports and query answers.

Written from the specification (issue 6, gateway/export.h and gateway/query.h
as contracts), not from the export or query code, so that a bug there is not
shared here.  Standard library only.

    python3 check_outputs.py --threshold 20 \
        --input k_users.csv --input g_viewers.csv [--exact N ...] \
        [--band age=10,20,40] [--map region=North,East,...] [--min-sigma 1] \
        --export X.csv [--export Y.csv ...] --query Q.csv [--query R.csv ...]

Every export CSV must have X.csv.meta.json next to it, every query CSV its
Q.csv.meta.json.  The policy's values on the command line are the floor: a
meta file may state a stricter k, l or limit (a policy copy may ask for more),
never a laxer one, and the files are checked against the stricter of the two.

Row exports (DP synthetic rows, gateway/export.h):
  - the meta holds only the documented provenance fields, and none of the
    --exact numbers anywhere (no row, candidate or suppressed count) but in
    synthetic_rows, a noisy estimate (rows_from says so) or the rows asked
    for, which may equal an exact count by chance;
  - the layout: no pseudonym or any other per-row identifier; the header is
    exactly the meta's columns in order: quasi-identifiers, then
    "<left>_..." / "<right>_..." features;
  - every cell is one of its column's bins as the meta lists them (a range
    "LO-HI" with LO <= HI, a plain integer, a value, or '*'), so no cell
    holds a subject's exact value; a column's ranges do not overlap; with
    --band/--map a quasi-identifier's ranges are aligned bands of a width of
    the hierarchy and its groups are the map's;
  - as many data rows as the meta's synthetic_rows;
  - the mechanism: the tree's edges are d-1 pairs of the columns spanning
    them; the noise of a 1-way cell has sigma sqrt(3d / (2 rho)) and of a
    2-way cell sqrt(3(d-1) / (2 rho)) (rho split in three; all of it to the
    1-way marginal when d = 1); with --min-sigma the 1-way sigma must be at
    least that.
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
BAND = re.compile(r"(-?\d+)-(-?\d+)")

# Provenance fields gateway/query.h documents; anything else could carry data.
QUERY_META_KEYS = {
    "query_id", "purpose", "analyst", "dataset", "group_by", "metrics", "mechanism", "rho", "epsilon",
    "threshold", "groups", "released", "suppressed", "partition_selection", "delta", "remaining_rho",
    "policy_hash", "audit_index", "created", "left", "right",
}
EXPORT_META_KEYS = {
    "release_id", "purpose", "analyst", "dataset", "mechanism", "rho", "rho_split", "remaining_rho", "noise",
    "columns", "omitted", "edges", "synthetic_rows", "rows_from", "binning", "policy_hash", "audit_index",
    "created", "left", "right",
}
# Meta strings that are hex by design: the policy's hash (public), the output's id.
HEX_BY_DESIGN = {"policy_hash", "release_id", "query_id"}


def meta_numbers(v, key=None):
    """Every number in a meta file, with the key it is under (numeric strings too)."""
    if isinstance(v, dict):
        for k2, v2 in v.items():
            yield from meta_numbers(v2, k2)
    elif isinstance(v, list):
        for v2 in v:
            yield from meta_numbers(v2, key)
    elif isinstance(v, bool):
        return
    elif isinstance(v, (int, float)):
        yield key, v
    elif isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v):
        yield key, float(v)


class Unusable(Exception):
    """An argument or input file the checker cannot work with (exit 2)."""


class Checker:
    def __init__(self, args):
        self.args = args
        self.violations = []
        self.user_ids = set()
        self.emails = set()
        self.phones = set()           # last 11 digits
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

    def check_label(self, where, label, what="cell"):
        """A bin label: a range "LO-HI" is two numbers, each checked alone (the dash is not phone punctuation)."""
        m = BAND.fullmatch(label)
        if m and int(m.group(1)) <= int(m.group(2)):
            self.check_text(where, m.group(1), what)
            self.check_text(where, m.group(2), what)
        else:
            self.check_text(where, label, what)

    def check_meta_strings(self, path, meta):
        def walk(v, key):
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    self.check_text(path, str(k2), "meta key")
                    walk(v2, k2)
            elif isinstance(v, list):
                for v2 in v:
                    walk(v2, key)
            elif isinstance(v, str) and key == "bins":
                self.check_label(path, v, "meta field 'bins'")
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
        self.check_meta_strings(mpath, meta)
        exact = set(a.exact)
        # synthetic_rows is the model's noisy estimate (or what was asked): it may hit the exact count by chance
        if meta.get("rows_from") not in ("noisy estimate", "requested"):
            self.fail(mpath, "meta rows_from is %r, neither a noisy estimate nor requested" % meta.get("rows_from"))
        for key, v in meta_numbers(meta):
            if key not in ("audit_index", "bins", "synthetic_rows") and v in exact:
                self.fail(mpath, "meta field '%s' = %s is an exact count of the data" % (key, v))
        cols, edges, left, right = meta.get("columns"), meta.get("edges"), meta.get("left"), meta.get("right")
        if not isinstance(cols, list) or not cols or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("bins"), list)
                for c in cols):
            raise Unusable("%s: meta 'columns' is not a list of {name, bins}" % mpath)
        if not isinstance(left, str) or not isinstance(right, str):
            raise Unusable("%s: meta 'left'/'right' missing" % mpath)
        names = [c["name"] for c in cols]
        bins = {c["name"]: c["bins"] for c in cols}
        d = len(cols)

        # The mechanism as the meta states it.
        try:
            rho = float(meta.get("rho"))
        except (TypeError, ValueError):
            rho = None
            self.fail(mpath, "meta 'rho' is not a decimal")
        noise = meta.get("noise") if isinstance(meta.get("noise"), dict) else {}
        if rho is not None and rho > 0:
            want1 = math.sqrt((3.0 * d if d > 1 else 1.0) / (2 * rho))
            s1 = noise.get("one_way_sigma")
            if not isinstance(s1, (int, float)) or abs(s1 - want1) > 1e-6 * want1:
                self.fail(mpath, "1-way noise sigma %s is not sqrt(3d / (2 rho)) = %.6g" % (s1, want1))
            if d > 1:
                want2 = math.sqrt(3.0 * (d - 1) / (2 * rho))
                s2 = noise.get("two_way_sigma")
                if not isinstance(s2, (int, float)) or abs(s2 - want2) > 1e-6 * want2:
                    self.fail(mpath, "2-way noise sigma %s is not sqrt(3(d-1) / (2 rho)) = %.6g" % (s2, want2))
            if a.min_sigma is not None and isinstance(s1, (int, float)) and s1 < a.min_sigma:
                self.fail(mpath, "1-way noise sigma %.6g is below the floor %.6g" % (s1, a.min_sigma))
            split = meta.get("rho_split") if isinstance(meta.get("rho_split"), dict) else {}
            try:
                total = sum(float(v) for v in split.values())
            except (TypeError, ValueError):
                total = float("inf")
            if not split or total > rho + 1e-9:
                self.fail(mpath, "meta rho_split %s does not stay within rho %s" % (split, rho))
        if not isinstance(edges, list) or len(edges) != d - 1:
            self.fail(mpath, "the tree has %s edges, not d - 1 = %d" %
                      (len(edges) if isinstance(edges, list) else None, d - 1))
        else:
            parent = {n: n for n in names}

            def find(x):
                while parent[x] != x:
                    x = parent[x]
                return x
            for e in edges:
                if not (isinstance(e, list) and len(e) == 2 and all(x in parent for x in e)) or \
                        find(e[0]) == find(e[1]):
                    self.fail(mpath, "edge %s is not a pair of columns joining two parts of the tree" % (e,))
                    break
                parent[find(e[0])] = find(e[1])

        # The bins: well formed, ranges disjoint, quasi-identifiers by the policy's hierarchies.
        for name in names:
            ranges = []
            for label in bins[name]:
                if not isinstance(label, str):
                    self.fail(mpath, "column '%s' has a bin that is not a label" % name)
                    continue
                m = BAND.fullmatch(label)
                if m:
                    lo, hi = int(m.group(1)), int(m.group(2))
                    if lo > hi:
                        self.fail(mpath, "column '%s' bin '%s' is an empty range" % (name, label))
                    ranges.append((lo, hi, label))
                elif re.fullmatch(r"-?\d+", label):
                    ranges.append((int(label), int(label), label))
                if name in self.bands and m:
                    if not any(lo % w == 0 and hi == lo + w - 1 for w in self.bands[name]):
                        self.fail(mpath, "'%s' bin '%s' is not an aligned band of the hierarchy %s" %
                                  (name, label, self.bands[name]))
                elif name in self.maps and label != "*" and label not in self.maps[name]:
                    self.fail(mpath, "'%s' bin '%s' is not one of the map's groups" % (name, label))
            ranges.sort()
            for x, y in zip(ranges, ranges[1:]):
                if y[0] <= x[1]:
                    self.fail(mpath, "column '%s' bins '%s' and '%s' overlap" % (name, x[2], y[2]))

        header, rows = read_csv(path)
        if header != names:
            self.fail(path + ":1", "the header %s is not the meta's columns %s (a pseudonym or any other column "
                      "would identify rows)" % (header, names))
            return
        prefixes = (left + "_", right + "_")
        first_feature = next((i for i, c in enumerate(header) if c.startswith(prefixes)), len(header))
        for c in header[first_feature:]:
            if not c.startswith(prefixes):
                self.fail(path + ":1", "column '%s' after the features is not a partner's feature" % c)
        if meta.get("synthetic_rows") != len(rows):
            self.fail(mpath, "meta synthetic_rows = %s but the CSV has %d data rows" %
                      (meta.get("synthetic_rows"), len(rows)))
        allowed = [set(bins[n]) for n in names]
        for line, row in rows:
            where = "%s:%d" % (path, line)
            if len(row) != len(header):
                self.fail(where, "%d fields, the header has %d" % (len(row), len(header)))
                continue
            for i, cell in enumerate(row):
                if cell not in allowed[i]:
                    self.fail("%s (%s)" % (where, header[i]), "'%s' is not one of the column's bins" % cell[:40])
                self.check_label("%s (%s)" % (where, header[i]), cell)
        self.summary.append("%s: %d synthetic rows, %d columns, rho %s, tree %s" %
                            (os.path.basename(path), len(rows), d, meta.get("rho"), json.dumps(edges)))

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

        for key, v in meta_numbers(meta):
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
    ap.add_argument("--export", action="append", default=[], help="a synthetic row export CSV (with CSV.meta.json)")
    ap.add_argument("--query", action="append", default=[], help="a query answer CSV (with CSV.meta.json)")
    ap.add_argument("--input", action="append", default=[], help="an input CSV whose identifiers must not leak")
    ap.add_argument("--threshold", type=int, help="the policy's query threshold")
    ap.add_argument("--exact", type=float, action="append", default=[], help="an exact count that must not be told")
    ap.add_argument("--band", action="append", default=[], help="COL=W1,W2,...: a band hierarchy")
    ap.add_argument("--map", action="append", default=[], help="COL=G1,G2,...: a map's groups")
    ap.add_argument("--min-sigma", type=float, help="smallest acceptable noise sigma of a count")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not a.export and not a.query:
        ap.error("nothing to check: give --export and/or --query")
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

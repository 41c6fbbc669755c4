"""The red team's view of the data: what each party knows, and the evaluator's truth.

Written as an adversary would, from the README and the files the demo writes,
never from the gateway's code (gateway/export.c, gateway/query.c).  Standard
library only.

- A *population* is a list of dicts column -> value (int or str), with columns
  named as in a release: "age", "region" (the policy's map group), then
  "k_<column>" / "g_<column>".  A partner's population holds its own users
  (its own columns and the quasi-identifiers); the evaluator's *members* are
  the subjects the gateway joins (both partners' columns).
- A *release* row is parsed into constraints: "LO-HI" an inclusive range, a
  plain integer an equality, "*" or an empty cell no constraint, anything else
  a category value.  The same parser reads today's export (which has a
  pseudonym column, dropped) and the synthetic channel's bins.
"""
import bisect
import csv
import datetime
import json
import os
import re

RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
INT = re.compile(r"^\s*-?\d+\s*$")
WS = "\u00a0\u3000 \t\r\n\"'"


# --- the policy: the region map and each partner's column roles -----------------

def policy_read(path):
    """(region map raw -> group, {partner: {column: role}}, {partner: [category values]})."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"map:\s*\{([^}]*)\}", text)
    rmap = {}
    if m:
        for pair in m.group(1).split(","):
            if ":" in pair:
                a, b = pair.split(":", 1)
                rmap[a.strip()] = b.strip()
    other = re.search(r"^\s*other:\s*(\S+)", text, re.M)
    roles, cats = {}, {}
    for part in re.split(r"^\s*- id:\s*", text, flags=re.M)[1:]:
        pid = part.split()[0]
        body = part.split("\n\n")[0]
        roles[pid] = {}
        for cm in re.finditer(r"name:\s*([A-Za-z0-9_]+)\s*,\s*type:\s*(\w+)([^}]*)role:\s*(\w+)", body, re.S):
            roles[pid][cm.group(1)] = cm.group(4)
            vm = re.search(r"values:\s*\[([^\]]*)\]", body[cm.start():cm.start() + 400])
            if cm.group(2) == "category" and vm:
                cats.setdefault(pid, {})[cm.group(1)] = [v.strip() for v in vm.group(1).split(",")]
        # block-style columns ("- name: region\n type: string ...")
        for bm in re.finditer(r"- name:\s*([A-Za-z0-9_]+)\s*\n\s*type:\s*(\w+)\s*\n\s*role:\s*(\w+)", body):
            roles[pid][bm.group(1)] = bm.group(3)
    return rmap, (other.group(1) if other else "Other"), roles, cats


# --- the partners' own files -------------------------------------------------------

def _ts(s):
    s = s.strip(WS).replace(" ", "T", 1)
    if len(s) == 10:
        s += "T00:00:00+00:00"
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


def norm_email(s):
    s = s.strip(WS).lower()
    if s.count("@") != 1:
        return None
    local, dom = s.split("@")
    if dom in ("gmail.com", "googlemail.com"):
        dom = "gmail.com"
        local = local.split("+", 1)[0].replace(".", "")
    return local + "@" + dom if local and dom else None


def norm_phone(s):
    s = s.strip(WS)
    if not s:
        return None
    if re.search(r"[A-Za-z]", s):
        raise ValueError("letters")
    d = re.sub(r"\D", "", s)
    if d.startswith("0086"):
        d = d[4:]
    elif d.startswith("86") and len(d) == 13:
        d = d[2:]
    return d if len(d) == 11 else None


def partner_read(path, pid, rmap, other, roles, cats):
    """One partner's users: {user_id: record} where a record is
    {"ids": (email, phone), "consent": set, "t": time, "vals": {release column: value}},
    the latest consent winning among a user's rows (README: Join and export).
    Rows the agent would reject (bad age, identifiers, categories) are left out."""
    users = {}
    role = roles[pid]
    with open(path, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            try:
                age = int(r["age"].strip(WS))
                if not 13 <= age <= 120:
                    continue
                email = r.get("email", "").strip(WS)
                em = norm_email(email) if email else None
                if email and em is None:
                    continue
                ph = norm_phone(r.get("phone", ""))
                if em is None and ph is None:
                    continue
                vals = {"age": age}
                reg = r["region"].strip(WS)
                vals["region"] = rmap.get(reg, other)
                for col, ro in role.items():
                    if ro != "feature":
                        continue
                    v = r[col].strip(WS)
                    if col in cats.get(pid, {}):
                        if v not in cats[pid][col]:
                            raise ValueError(col)
                        vals[pid + "_" + col] = v
                    else:
                        vals[pid + "_" + col] = int(v)
                t = _ts(r["consent_at"])
            except (ValueError, KeyError, AttributeError, TypeError):
                continue
            rec = {"ids": (em, ph), "consent": set(x.strip(WS) for x in r["consent"].split(";") if x.strip(WS)),
                   "t": t, "vals": vals}
            old = users.get(r["user_id"])
            if old is None or rec["t"] >= old["t"]:
                users[r["user_id"]] = rec
    return users


class Data:
    """A demo directory as each party sees it."""

    def __init__(self, ddir, policy):
        self.rmap, self.other, self.roles, self.cats = policy_read(policy)
        self.k = partner_read(os.path.join(ddir, "k_users.csv"), "k", self.rmap, self.other, self.roles, self.cats)
        self.g = partner_read(os.path.join(ddir, "g_viewers.csv"), "g", self.rmap, self.other, self.roles, self.cats)
        tp = os.path.join(ddir, "truth.json")
        self.truth = json.load(open(tp)) if os.path.exists(tp) else {}
        self._join()

    def _join(self):
        """The evaluator's ground truth (never given to an attacker): the joined
        subjects, by the README's rule (email first, then phone, each user paired
        once), consenting to analytics on both sides."""
        def live(users):
            return {u: r for u, r in users.items() if "match" in r["consent"]}
        k, g = live(self.k), live(self.g)
        self.k_population = [r["vals"] for r in k.values()]
        self.g_population = [r["vals"] for r in g.values()]
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
        self.matched = len(pairs)
        self.members = []
        for u, v in pairs:
            if "analytics" in k[u]["consent"] and "analytics" in g[v]["consent"]:
                row = dict(k[u]["vals"])
                row.update({c: x for c, x in g[v]["vals"].items() if c.startswith("g_")})
                self.members.append(row)


# --- releases ---------------------------------------------------------------------

def cell_parse(s):
    """A release cell: None (no constraint), (lo, hi) integers, or a category str."""
    s = s.strip()
    if s in ("", "*"):
        return None
    m = RANGE.match(s)
    if m:
        return (int(m.group(1)), int(m.group(2)))
    if INT.match(s):
        v = int(s)
        return (v, v)
    return s


def release_read(path, rmap=None):
    """(columns, rows of constraints, meta dict) of a row release; a 'pseudonym'
    column (today's export) is dropped, region cells map to their policy group."""
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.reader(f)
        head = next(rd)
        keep = [i for i, c in enumerate(head) if c != "pseudonym"]
        cols = [head[i] for i in keep]
        rows = []
        for r in rd:
            row = {}
            for i in keep:
                v = cell_parse(r[i])
                if isinstance(v, str) and rmap and head[i] == "region":
                    v = rmap.get(v, v)
                row[head[i]] = v
            rows.append(row)
    meta = {}
    if os.path.exists(path + ".meta.json"):
        meta = json.load(open(path + ".meta.json"))
    return cols, rows, meta


def meta_rho(meta):
    """The ρ a release states it was charged, or None: 'rho' or any key starting
    with 'rho' that is not about what remains."""
    for k in sorted(meta):
        if k.startswith("rho") and "remain" not in k:
            try:
                return float(meta[k])
            except (TypeError, ValueError):
                pass
    return None


def _fits(con, val):
    if con is None or val is None:
        return True
    if isinstance(con, tuple):
        if isinstance(val, tuple):
            return con[0] <= val[1] and val[0] <= con[1]
        return isinstance(val, int) and con[0] <= val <= con[1]
    return con == val


class Index:
    """Items (dicts column -> int | (lo, hi) | str | None) indexed per column, to
    find the items consistent with a set of constraints without a full scan."""

    def __init__(self, items, cols):
        self.items = items
        self.cols = [c for c in cols]
        self.num, self.cat = {}, {}
        for c in self.cols:
            vals = [it.get(c) for it in items]
            if any(isinstance(v, str) for v in vals):
                d, wild = {}, []
                for i, v in enumerate(vals):
                    (wild.append(i) if not isinstance(v, str) else d.setdefault(v, []).append(i))
                self.cat[c] = (d, wild)
            else:
                fin, wild, w = [], [], 0
                for i, v in enumerate(vals):
                    if v is None:
                        wild.append(i)
                    else:
                        lo, hi = (v, v) if isinstance(v, int) else v
                        fin.append((lo, hi, i))
                        w = max(w, hi - lo)
                fin.sort()
                self.num[c] = ([x[0] for x in fin], fin, wild, w)
        self.cache = {}

    def _cands(self, c, con):
        if c in self.cat:
            d, wild = self.cat[c]
            if not isinstance(con, str):
                return None
            return d.get(con, []) + wild
        los, fin, wild, w = self.num[c]
        if not isinstance(con, tuple):
            return None
        a = bisect.bisect_left(los, con[0] - w)
        b = bisect.bisect_right(los, con[1])
        if b - a + len(wild) > len(self.items):
            return None
        return [fin[j][2] for j in range(a, b)] + wild

    def consistent(self, query):
        """Indices of the items consistent with query (column -> constraint)."""
        key = tuple((c, query.get(c)) for c in self.cols)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        best = None
        for c in self.cols:
            if query.get(c) is None:
                continue
            if c in self.cat and isinstance(query[c], str):
                d, wild = self.cat[c]
                size = len(d.get(query[c], [])) + len(wild)
            elif c in self.num and isinstance(query[c], tuple):
                los, fin, wild, w = self.num[c]
                size = bisect.bisect_right(los, query[c][1]) - bisect.bisect_left(los, query[c][0] - w) + len(wild)
            else:
                continue
            if best is None or size < best[0]:
                best = (size, c)
        cand = range(len(self.items)) if best is None else self._cands(best[1], query[best[1]])
        if cand is None:
            cand = range(len(self.items))
        out = [i for i in cand if all(_fits(query.get(c), self.items[i].get(c)) for c in self.cols)]
        self.cache[key] = out
        return out


def as_constraints(item, cols):
    """A population item (exact values) as release-style constraints."""
    out = {}
    for c in cols:
        v = item.get(c)
        out[c] = (v, v) if isinstance(v, int) else v
    return out


def intersect(a, b, cols):
    """The constraints both a and b impose (they are known to be consistent)."""
    out = {}
    for c in cols:
        x, y = a.get(c), b.get(c)
        if x is None:
            out[c] = y
        elif y is None or isinstance(x, str):
            out[c] = x
        else:
            out[c] = (max(x[0], y[0]), min(x[1], y[1]))
    return out


class BinMatch:
    """Fast consistency counts between release rows (constraints) and people
    (exact values) when, in every column, the release's constraints do not
    overlap (the bins of a synthetic release, or exact values): each person
    then falls in at most one bin per column, and consistency is equality of
    bin numbers except where the row says '*'.  Built with BinMatch.make,
    which returns None when some column's constraints overlap (use Index)."""

    @staticmethod
    def make(rows, people, cols, extra=()):
        """extra: more constraints that share the bins (a second release)."""
        mappers = []
        for c in cols:
            cons = set(r.get(c) for r in list(rows) + list(extra)) - {None}
            strs = [x for x in cons if isinstance(x, str)]
            ivs = sorted(x for x in cons if isinstance(x, tuple))
            if any(ivs[i][0] <= ivs[i - 1][1] for i in range(1, len(ivs))):
                return None
            mappers.append((c, {s: i for i, s in enumerate(strs)}, [x[0] for x in ivs], ivs))
        return BinMatch(rows, people, mappers)

    def __init__(self, rows, people, mappers):
        def bin_of(m, x):
            c, sid, los, ivs = m
            if isinstance(x, str):
                return ("s", sid[x]) if x in sid else None
            if isinstance(x, tuple):   # a row's own constraint: exactly one of the bins
                j = bisect.bisect_left(los, x[0])
                return ("i", j) if j < len(ivs) and ivs[j] == x else None
            if isinstance(x, int):
                j = bisect.bisect_right(los, x) - 1
                return ("i", j) if j >= 0 and ivs[j][1] >= x else None
            return None
        self.rsig = [tuple(None if r.get(m[0]) is None else bin_of(m, r.get(m[0])) for m in mappers) for r in rows]
        self.psig = [tuple(bin_of(m, p.get(m[0])) for m in mappers) for p in people]
        self.masks = {}
        for i, s in enumerate(self.rsig):
            mask = tuple(x is not None for x in s)
            self.masks.setdefault(mask, {}).setdefault(tuple(x for x in s if x is not None), []).append(i)
        self.pmask = {}
        for mask in self.masks:
            d = {}
            for i, s in enumerate(self.psig):
                d.setdefault(tuple(x for x, k in zip(s, mask) if k), []).append(i)
            self.pmask[mask] = d

    def people_of_row(self, i):
        """Indices of the people consistent with row i."""
        s = self.rsig[i]
        mask = tuple(x is not None for x in s)
        return self.pmask[mask].get(tuple(x for x in s if x is not None), [])

    def rows_of_person(self, i):
        """How many rows are consistent with person i."""
        s = self.psig[i]
        return sum(len(d.get(tuple(x for x, k in zip(s, mask) if k), [])) for mask, d in self.masks.items())

"""Checks of `crossgate analytics` output for tests/e2e/test_analytics_report.sh.

usage: python3 analytics_check.py planted REPORT.json TRUTH.json
       python3 analytics_check.py threshold REPORT.json CSV_DIR N
       python3 analytics_check.py dom REPORT.json DOM.html
       python3 analytics_check.py png SHOT.png
Prints "ok ..." / "FAIL ..." lines and exits non-zero on a failure.
"""
import csv
import html.parser
import json
import math
import os
import sys

failed = 0


def check(what, ok, detail=""):
    global failed
    if ok:
        print("ok " + what)
    else:
        failed += 1
        print("FAIL " + what + (": " + str(detail) if detail != "" else ""))


def planted(rep_path, truth_path):
    rep = json.load(open(rep_path))
    pl = json.load(open(truth_path))["planted"]
    # Coefficients: the export must give back the generator's, within 2%.
    mix = rep["content_mix"]
    for f in mix["features"]:
        want = pl["coefficients"][f["name"]]
        check("coefficient of %s recovered (%.4g, planted %.4g)" % (f["name"], f["coef"], want),
              abs(f["coef"] - want) <= 0.02 * want, f["coef"])
    check("alpha is the learning weight", mix["alpha"] == mix["features"][1]["coef"])
    check("beta is the watching weight", mix["beta"] == mix["features"][2]["coef"])
    check("held-out R^2 above 0.95", mix["cv_r2"] > 0.95, mix["cv_r2"])
    for f in mix["features"]:
        lo, hi = f["ci95_standardized"]
        check("the 95%% interval of %s holds its estimate" % f["name"],
              lo <= f["coef_standardized"] <= hi, (lo, f["coef_standardized"], hi))
    # Segments: k chosen by silhouette equals the planted number; each planted
    # segment has a released one with its share (+-0.04) and medians (within 25%).
    seg = rep["segments"]
    check("segments chosen by silhouette", seg["k_by_silhouette"])
    check("as many segments as planted", seg["k"] == len(pl["segments"]), seg["k"])
    names = {"learn_median": "k_learning_minutes", "watch_median": "g_watch_minutes",
             "streams_median": "g_streams_followed"}
    total = sum(s["size"] for s in seg["segments"])
    for p in pl["segments"]:
        def dist(s):
            return sum(abs(math.log(s["center"][c] / p[m])) for m, c in names.items())
        best = min(seg["segments"], key=dist)
        share = best["size"] / total
        check("planted segment %s found with its share (%.3f, planted %.2f)" % (p["name"], share, p["share"]),
              abs(share - p["share"]) <= 0.04, share)
        for m, c in names.items():
            check("planted segment %s: %s near its median (%.1f, planted %.1f)" % (p["name"], c, best["center"][c], p[m]),
                  abs(math.log(best["center"][c] / p[m])) <= math.log(1.25), best["center"][c])
    # Affinity: the planted pair is the strongest rule.
    aff = rep["affinity"]
    top = aff["pairs"][0]
    check("the strongest rule is the planted %s -> %s" % (pl["affinity"]["course"], pl["affinity"]["game"]),
          (top["course"], top["game"]) == (pl["affinity"]["course"], pl["affinity"]["game"]), top)
    check("its lift is above 2", top["lift"] > 2.0, top["lift"])
    others = [p["lift"] for p in aff["pairs"][1:]]
    check("every other pair's lift is below 1.6", max(others) < 1.6, max(others))


def threshold(rep_path, csv_dir, n):
    n = float(n)
    rep = json.load(open(rep_path))
    cells = []   # (where, value) of every count released
    seg = rep["segments"]
    for i, s in enumerate(seg["segments"]):
        cells.append(("json segment %d size" % i, s["size"]))
        for col, tops in s["dominant"].items():
            cells += [("json segment %d %s" % (i, col), t["count"]) for t in tops]
    aff = rep["affinity"]
    if aff["available"]:
        cells += [("json pair", p["count"]) for p in aff["pairs"]]
        cells += [("json course marginal", c["count"]) for c in aff["course_categories"] if c["count"] is not None]
        cells += [("json game marginal", c["count"]) for c in aff["game_categories"] if c["count"] is not None]
    if rep["content_mix"]["available"]:
        cells.append(("json rows used", rep["content_mix"]["rows_used"]))
    for name, col in (("segments.csv", "size"), ("segment_categories.csv", "count"),
                      ("affinity.csv", "count"), ("content_mix.csv", "rows_used")):
        for r in csv.DictReader(open(os.path.join(csv_dir, name), newline="")):
            cells.append(("%s %s" % (name, col), float(r[col])))
    low = [c for c in cells if c[1] < n]
    check("no released count below the threshold %d (%d cells checked)" % (n, len(cells)), not low, low[:5])
    check("counts were released at all", len(cells) > 0)


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.count = {}
        self.svg = []
        self.external = []
        self.scripts = 0
        self.prov = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "svg":
            self.svg.append(a.get("id") or ".".join(cls))
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            v = a.get(k) or ""
            if v and not v.startswith("#") and not v.startswith("url(#"):
                self.external.append(v)
        if tag == "link":
            self.external.append(a.get("href") or "link")
        if tag == "section" and a.get("id") == "provenance":
            self.prov = True
        for c in cls:
            key = tag + "." + c
            self.count[key] = self.count.get(key, 0) + 1


def dom(rep_path, dom_path):
    rep = json.load(open(rep_path))
    text = open(dom_path).read()
    d = Dom()
    d.feed(text)
    nfeat = len(rep["content_mix"]["features"])
    nseg = rep["segments"]["k"]
    aff = rep["affinity"]
    ncells = len(aff["course_categories"]) * len(aff["game_categories"])
    check("the browser rendered the whole report", "</footer>" in text)
    for sid in ("coef-chart", "segment-sizes", "affinity-heatmap"):
        check("chart %s is there" % sid, sid in d.svg, d.svg)
    check("one bar per coefficient (%d)" % nfeat, d.count.get("rect.bar") == nfeat, d.count.get("rect.bar"))
    check("one interval per coefficient", d.count.get("line.ci") == nfeat, d.count.get("line.ci"))
    check("one size bar per segment (%d)" % nseg, d.count.get("rect.seg-bar") == nseg, d.count.get("rect.seg-bar"))
    check("one profile per segment", d.count.get("svg.profile") == nseg, d.count.get("svg.profile"))
    check("one heat-map cell per category pair (%d)" % ncells, d.count.get("rect.cell") == ncells,
          d.count.get("rect.cell"))
    check("withheld cells as the JSON says (%d)" % aff["withheld"],
          d.count.get("rect.withheld", 0) == aff["withheld"], d.count.get("rect.withheld", 0))
    check("a provenance box", d.prov)
    check("no script", d.scripts == 0 and "<script" not in text.lower())
    check("nothing loaded from elsewhere", not d.external and "@import" not in text and "url(http" not in text,
          d.external[:3])
    if rep["provenance"]["known"]:
        check("the provenance box names the export id", rep["provenance"].get("export_id", "-") in text)
        check("and the policy hash", rep["provenance"]["policy_hash"] in text)


def png(path):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    small = im.resize((w // 4, h // 4))
    px = list(small.getdata())
    colors = set(px)
    check("the screenshot is not blank (%d colours)" % len(colors), len(colors) > 200, len(colors))
    def near(c, t, tol=40):
        return all(abs(a - b) <= tol for a, b in zip(c, t))
    k = sum(1 for c in px if near(c, (0x4f, 0x46, 0xe5)))
    g = sum(1 for c in px if near(c, (0xea, 0x58, 0x0c)))
    check("K's indigo is painted (%d pixels)" % k, k > 500, k)
    check("G's orange is painted (%d pixels)" % g, g > 500, g)


if __name__ == "__main__":
    {"planted": planted, "threshold": threshold, "dom": dom, "png": png}[sys.argv[1]](*sys.argv[2:])
    print("analytics_check: %d failed" % failed)
    sys.exit(1 if failed else 0)

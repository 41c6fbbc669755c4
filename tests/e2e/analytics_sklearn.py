"""Checks `crossgate analytics report --format json` against scikit-learn on the same export.

usage: /usr/bin/python3 analytics_sklearn.py EXPORT.csv REPORT.json INIT_REPORT.json K
REPORT.json: the default run (ridge with CV, bootstrap); INIT_REPORT.json: a run
with --segments K --kmeans-init first.  Prints "ok ..." / "FAIL ..." lines.
Debian's python3-sklearn (setup.sh) is an independent implementation: nothing
here reuses crossgate's code.
"""
import csv
import json
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import analytics_check
from analytics_check import check

REL = 1e-6


def close(what, got, want, rel=REL):
    err = abs(got - want) / max(abs(want), 1e-12)
    check(what, err <= rel, "got %r, sklearn %r (relative error %.3g)" % (got, want, err))


export, report_path, init_path, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = list(csv.DictReader(open(export, newline="")))
feats = ["k_course_spend_cents", "k_learning_minutes", "g_watch_minutes"]
X = np.array([[float(r[c]) for c in feats] for r in rows])
y = np.array([float(r["k_conversion_value_cents"]) for r in rows])
rep = json.load(open(report_path))
mix = rep["content_mix"]
check("content mix available", mix["available"])
check("rows used is every row", mix["rows_used"] == len(rows), "%s vs %d" % (mix["rows_used"], len(rows)))

# Ridge(alpha=lambda) on StandardScaler features: same coefficients and intercept.
lam = mix["lambda"]
Xs = StandardScaler().fit_transform(X)
ridge = Ridge(alpha=lam).fit(Xs, y)
for j, f in enumerate(mix["features"]):
    close("standardized coefficient of %s" % f["name"], f["coef_standardized"], ridge.coef_[j])
close("intercept on standardized features", mix["intercept_standardized"], ridge.intercept_)
# The same model in original units.
scaler = StandardScaler().fit(X)
for j, f in enumerate(mix["features"]):
    close("coefficient of %s per unit" % f["name"], f["coef"], ridge.coef_[j] / scaler.scale_[j])
close("intercept in original units", mix["intercept"],
      ridge.intercept_ - float(np.sum(ridge.coef_ * scaler.mean_ / scaler.scale_)))
close("R^2 on all rows", mix["r2_train"], ridge.score(Xs, y))

# Held-out R^2: KFold without shuffling, the scaler fit inside each fold.
pipe = make_pipeline(StandardScaler(), Ridge(alpha=lam))
scores = cross_val_score(pipe, X, y, cv=KFold(n_splits=mix["folds"]), scoring="r2")
for i, s in enumerate(scores):
    close("held-out R^2 of fold %d" % (i + 1), mix["fold_r2"][i], s)
close("mean held-out R^2", mix["cv_r2"], float(np.mean(scores)))

# Lambda: every grid score matches, and the chosen one is the best (ties within 1e-9).
grid = [g["lambda"] for g in mix["grid"]]
gs = GridSearchCV(pipe, {"ridge__alpha": grid}, cv=KFold(n_splits=mix["folds"]), scoring="r2").fit(X, y)
for g, s in zip(mix["grid"], gs.cv_results_["mean_test_score"]):
    close("cross-validated R^2 at lambda %g" % g["lambda"], g["cv_r2"], s)
best = float(np.max(gs.cv_results_["mean_test_score"]))
check("the chosen lambda has the best cross-validated R^2",
      mix["cv_r2"] >= best - 1e-9 * abs(best), "%r vs best %r" % (mix["cv_r2"], best))

# k-means inertia from a fixed initialisation: the first K rows of log1p, standardized.
init = json.load(open(init_path))["segments"]
cols = init["features"]
Z = StandardScaler().fit_transform(np.log1p(np.array([[float(r[c]) for c in cols] for r in rows])))
km = KMeans(n_clusters=k, init=Z[:k], n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(Z)
check("k-means fit has %d clusters" % k, init["k_fit"] == k, str(init["k_fit"]))
close("k-means inertia from the first %d rows" % k, init["inertia"], km.inertia_)
sizes = sorted(np.bincount(km.labels_, minlength=k).tolist(), reverse=True)
released = sorted([s["size"] for s in init["segments"]], reverse=True)
check("segment sizes equal sklearn's cluster sizes (none below the threshold)",
      released == sizes, "%s vs %s" % (released, sizes))

print("analytics_sklearn: %d failed" % analytics_check.failed)
sys.exit(1 if analytics_check.failed else 0)

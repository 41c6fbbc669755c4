/*
 * html.h - the analytics report for people: one self-contained HTML file.
 *
 * Everything is inline: CSS in a <style> element, charts as inline SVG, the
 * system font stack; no script, no external font, style sheet or image, so
 * the file can be mailed or archived and shows the same everywhere.
 * Sections: key figures; the content-mix coefficient chart with its 95%
 * bootstrap intervals (svg#coef-chart: one rect.bar and one line.ci per
 * feature); segment sizes (svg#segment-sizes: one rect.seg-bar per segment)
 * and profiles (one svg.profile per segment); the affinity heat map
 * (svg#affinity-heatmap: one rect.cell per course x game pair, class
 * "withheld" when below the threshold); with an audience or a lift file,
 * section#activation (noisy audience size, the lift with its interval in
 * svg#lift-interval, the rho spent); and the provenance box
 * (section#provenance).  Tests count those elements.
 *
 * Every text that comes from the input (category names, provenance
 * strings) is HTML-escaped.
 */
#ifndef CG_HTML_H
#define CG_HTML_H

#include "base/err.h"
#include "analytics/analytics.h"

/* Write the report to path (mode 0644 as umask allows).  CG_ERR_IO. */
int html_write(const struct analytics *a, const char *path, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif

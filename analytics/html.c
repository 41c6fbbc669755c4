/* html.c - see html.h */
#include "analytics/html.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/report.h"
#include "base/escape.h"
#include "base/outfile.h"

#define HTML_K_COLOR "#4f46e5"      /* K, the knowledge platform */
#define HTML_G_COLOR "#ea580c"      /* G, the live-streaming platform */
#define HTML_INK "#1e293b"
#define HTML_MUTED "#64748b"
#define HTML_GRID "#e2e8f0"

static const char *const html_seg_colors[] = {
	"#4f46e5", "#ea580c", "#0d9488", "#db2777", "#ca8a04", "#7c3aed", "#2563eb", "#65a30d",
	"#0891b2", "#9333ea", "#dc2626", "#16a34a", "#c026d3", "#0284c7", "#d97706", "#475569",
};

static const char html_css[] =
    ":root{--k:" HTML_K_COLOR ";--g:" HTML_G_COLOR ";--ink:" HTML_INK ";--muted:" HTML_MUTED ";"
    "--line:" HTML_GRID ";--bg:#f1f5f9}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--ink);"
    "font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}"
    ".hero{background:linear-gradient(135deg,#312e81 0%,#4f46e5 45%,#ea580c 100%);color:#fff;"
    "padding:40px 48px 96px}"
    ".eyebrow{text-transform:uppercase;letter-spacing:.12em;font-size:12px;opacity:.8}"
    "h1{font-size:32px;line-height:1.2;margin:8px 0 8px;max-width:900px}"
    ".lede{font-size:17px;opacity:.92;max-width:820px;margin:0}"
    "main{max-width:1120px;margin:-64px auto 0;padding:0 24px 48px}"
    ".kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:16px;margin-bottom:24px}"
    ".kpi{background:#fff;border-radius:14px;padding:18px 20px;box-shadow:0 1px 3px rgba(15,23,42,.08),"
    "0 8px 24px rgba(15,23,42,.06)}"
    ".kpi .v{font-size:30px;font-weight:700;letter-spacing:-.02em}"
    ".kpi .l{color:var(--muted);font-size:13px}"
    ".card{background:#fff;border-radius:16px;padding:28px 32px;margin-bottom:24px;"
    "box-shadow:0 1px 3px rgba(15,23,42,.08),0 8px 24px rgba(15,23,42,.06)}"
    "h2{font-size:22px;margin:0 0 4px}"
    ".sub{color:var(--muted);margin:0 0 18px}"
    ".takeaway{font-size:17px;margin:0 0 18px}"
    ".grid2{display:grid;grid-template-columns:3fr 2fr;gap:28px;align-items:start}"
    "table{border-collapse:collapse;width:100%;font-size:14px}"
    "th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.05em}"
    ".num{font-variant-numeric:tabular-nums}"
    ".dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}"
    ".segs{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px;margin-top:18px}"
    ".seg{border:1px solid var(--line);border-radius:14px;padding:16px 18px;border-top:5px solid}"
    ".seg h3{margin:0;font-size:17px}"
    ".seg .meta{color:var(--muted);font-size:13px;margin-bottom:8px}"
    ".chips{margin:6px 0 0}"
    ".chip{display:inline-block;padding:2px 9px;margin:2px 4px 2px 0;border-radius:999px;font-size:12px;"
    "background:#eef2ff;color:#3730a3}"
    ".chip.g{background:#fff7ed;color:#9a3412}"
    ".chip.q{background:#f1f5f9;color:#334155}"
    ".mini{font-size:13px;margin-top:8px}.mini td,.mini th{padding:3px 6px}"
    ".note{color:var(--muted);font-size:13px}"
    ".unavailable{background:#fef2f2;color:#991b1b;border-radius:10px;padding:12px 16px}"
    ".prov{border-left:6px solid var(--k)}"
    ".prov.unknown{border-left-color:#dc2626}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 20px;margin:0}"
    "dt{color:var(--muted)}dd{margin:0;font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;"
    "font-size:13px;word-break:break-all}"
    "svg text{font-family:inherit}"
    "footer{color:var(--muted);font-size:13px;max-width:1120px;margin:0 auto;padding:0 24px 40px}"
    "@media (max-width:800px){.kpis{grid-template-columns:repeat(2,1fr)}.grid2{grid-template-columns:1fr}}";

struct html {
	FILE *f;
	const struct analytics *a;
};

/* Names come from the data: escaped by the one helper (markup, controls, bidi overrides, bad UTF-8). */
static void
html_esc(FILE *f, const char *s)
{
	escape_html(f, s);
}

/* 1234567 -> "1,234,567". */
static const char *
html_count(char *buf, size_t size, double v)
{
	char tmp[32];
	size_t n, i, o = 0;

	if (!isfinite(v)) {
		snprintf(buf, size, "withheld");
		return buf;
	}
	snprintf(tmp, sizeof(tmp), "%.0f", fabs(v));
	n = strlen(tmp);
	if (v < 0 && o + 1 < size)
		buf[o++] = '-';
	for (i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Money in cents as units with two decimals and thousands separators. */
static const char *
html_money(char *buf, size_t size, double cents)
{
	char whole[40];
	double u = fabs(cents) / 100.0;
	long long c = llround(u * 100.0) % 100;

	html_count(whole, sizeof(whole), floor(u + 0.005));
	snprintf(buf, size, "%s%s.%02lld", cents < 0 ? "-" : "", whole, c);
	return buf;
}

/* Mix white toward a colour by t in [0, 1]. */
static void
html_tint(char *out, size_t size, const char *hex, double t)
{
	unsigned r, g, b;

	if (t < 0)
		t = 0;
	if (t > 1)
		t = 1;
	if (sscanf(hex + 1, "%2x%2x%2x", &r, &g, &b) != 3)
		r = g = b = 0;
	snprintf(out, size, "#%02x%02x%02x", (unsigned)lround(255 + (r - 255.0) * t),
	    (unsigned)lround(255 + (g - 255.0) * t), (unsigned)lround(255 + (b - 255.0) * t));
}

static const char *
html_feature_label(int col)
{
	switch (col) {
	case DATASET_SPEND: return "Course spend";
	case DATASET_LEARN: return "Learning time";
	case DATASET_COURSES: return "Courses bought";
	case DATASET_CONV: return "Conversion value";
	case DATASET_WATCH: return "Watch time";
	case DATASET_GIFT: return "Gift spend";
	case DATASET_STREAMS: return "Streams followed";
	default: return "";
	}
}

static int
html_feature_is_k(int col)
{
	return dataset_num_names[col][0] == 'k';
}

/* ---- header and key figures ------------------------------------------------ */

static void
html_header(struct html *h)
{
	const struct analytics *a = h->a;
	char b1[48], b2[48];
	FILE *f = h->f;

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
	    "<title>crossgate analytics: the shared audience of K and G</title><style>", f);
	fputs(html_css, f);
	fputs("</style></head><body>\n<header class=\"hero\"><div class=\"eyebrow\">crossgate analytics"
	    " &middot; released outputs only</div>"
	    "<h1>Who is the shared audience, and what makes it convert?</h1><p class=\"lede\">", f);
	if (a->data != NULL)
		fprintf(f, "%s users who use both K (paid knowledge) and G (game live streams), seen only "
		    "through the gateway&rsquo;s anonymized export. Every count below covers at least "
		    "%u people.", html_count(b1, sizeof(b1), (double)a->rows), a->threshold);
	else
		fprintf(f, "The shared audience of K and G, seen only through differentially private "
		    "releases: no row leaves the gateway for this report. Every count below is a noisy count "
		    "of at least %u.", a->threshold);
	fputs("</p></header>\n<main>\n<div class=\"kpis\">", f);
	fprintf(f, "<div class=\"kpi\"><div class=\"v\">%s</div><div class=\"l\">shared users analysed%s"
	    "</div></div>", a->data ? html_count(b1, sizeof(b1), (double)a->rows) : a->have_dpmix ?
	    html_count(b1, sizeof(b1), round(a->dpmix.n)) : "&ndash;", a->data == NULL && a->have_dpmix ?
	    " (a noisy count)" : "");
	fprintf(f, "<div class=\"kpi\"><div class=\"v\">%zu</div><div class=\"l\">audience segments"
	    "</div></div>", a->have_dpseg ? a->dpseg.k : a->seg ? a->seg->nseg : (size_t)0);
	if (a->have_mix)
		snprintf(b2, sizeof(b2), "%.1f%%", 100.0 * a->mix.cv_r2);
	else if (a->have_dpmix)
		snprintf(b2, sizeof(b2), "%.1f%%", 100.0 * a->dpmix.r2);
	else
		snprintf(b2, sizeof(b2), "&ndash;");
	fprintf(f, "<div class=\"kpi\"><div class=\"v\">%s</div><div class=\"l\">of conversion value "
	    "explained (%s)</div></div>", b2, a->have_mix ? "held-out R&sup2;" : "R&sup2; from the DP statistics");
	if (a->aff != NULL && a->aff->released > 0) {
		const struct affinity_pair *p = &a->aff->pairs[a->aff->rules[0]];

		fprintf(f, "<div class=\"kpi\"><div class=\"v\">%.1f&times;</div><div class=\"l\">", p->lift);
		html_esc(f, a->aff->course.names[p->course]);
		fputs(" learners &rarr; ", f);
		html_esc(f, a->aff->game.names[p->game]);
		fputs(" games (lift)</div></div>", f);
	} else {
		fputs("<div class=\"kpi\"><div class=\"v\">&ndash;</div><div class=\"l\">strongest "
		    "category affinity</div></div>", f);
	}
	fputs("</div>\n", f);
}

/* Markup, escaped text, markup. */
static void
html_wrap(FILE *f, const char *before, const char *text, const char *after)
{
	fputs(before, f);
	html_esc(f, text);
	fputs(after, f);
}

static void
html_unavailable(FILE *f, const char *what, const char *why)
{
	fprintf(f, "<p class=\"unavailable\">%s is not available: ", what);
	html_wrap(f, "", why, "</p>");
}

/* ---- content mix ------------------------------------------------------------ */

static void
html_coef_chart(struct html *h)
{
	const struct ridge_fit *m = &h->a->mix;
	const int W = 600, left = 170, right = 40, top = 20, rowh = 64, bar = 28;
	int H = top + rowh * (int)m->p + 50, plot = W - left - right;
	double lo = 0.0, hi = 0.0, span, step, t;
	FILE *f = h->f;
	size_t j;

	for (j = 0; j < m->p; j++) {
		double a = fmin(m->coef_std[j], m->boot_lo[j]), b = fmax(m->coef_std[j], m->boot_hi[j]);

		lo = fmin(lo, a);
		hi = fmax(hi, b);
	}
	if (hi - lo <= 0.0)
		hi = lo + 1.0;
	span = (hi - lo) * 1.08;
	hi = lo + span;
	/* A tick step of 1, 2 or 5 times a power of ten, about five ticks. */
	step = pow(10.0, floor(log10(span / 5.0)));
	if (span / step > 25)
		step *= 5;
	else if (span / step > 10)
		step *= 2;
#define X(v) (left + (double)plot * ((v) - lo) / (hi - lo))
	fprintf(f, "<svg id=\"coef-chart\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" "
	    "aria-label=\"Content-mix coefficients with 95%% intervals\" "
	    "xmlns=\"http://www.w3.org/2000/svg\">", W, H);
	for (t = ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) {
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\"/>", X(t), X(t),
		    top - 6, H - 30, fabs(t) < 1e-9 * span ? "#94a3b8" : HTML_GRID);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"%s\" text-anchor=\"middle\">"
		    "%.4g</text>", X(t), H - 14, HTML_MUTED, fabs(t) < 1e-9 * span ? 0.0 : t / 100.0);
	}
	for (j = 0; j < m->p; j++) {
		int col = analytics_mix_cols[j], y = top + rowh * (int)j;
		const char *color = html_feature_is_k(col) ? HTML_K_COLOR : HTML_G_COLOR;
		double x0 = X(fmin(0.0, m->coef_std[j])), x1 = X(fmax(0.0, m->coef_std[j]));

		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"600\" fill=\"%s\" "
		    "text-anchor=\"end\">%s</text>", left - 14, y + bar / 2 + 1, HTML_INK,
		    html_feature_label(col));
		/* "T^K" as T with a superscript K. */
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\" text-anchor=\"end\">"
		    "%.1s<tspan baseline-shift=\"super\" font-size=\"8\">%s</tspan></text>", left - 14,
		    y + bar / 2 + 17, HTML_MUTED, analytics_mix_symbols[j], analytics_mix_symbols[j] + 2);
		fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"5\" "
		    "fill=\"%s\" fill-opacity=\"0.85\"><title>%s: %.4g per standard deviation</title></rect>",
		    x0, y, fmax(x1 - x0, 1.0), bar, color, html_feature_label(col), m->coef_std[j]);
		fprintf(f, "<line class=\"ci\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" "
		    "stroke-width=\"2\"/>", X(m->boot_lo[j]), X(m->boot_hi[j]), y + bar / 2, y + bar / 2,
		    HTML_INK);
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>"
		    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>",
		    X(m->boot_lo[j]), X(m->boot_lo[j]), y + 7, y + bar - 7, HTML_INK,
		    X(m->boot_hi[j]), X(m->boot_hi[j]), y + 7, y + bar - 7, HTML_INK);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" font-weight=\"700\" fill=\"%s\">"
		    "+%.2f</text>", X(m->boot_hi[j]) + 8, y + bar / 2 + 4, color, m->coef_std[j] / 100.0);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\" text-anchor=\"middle\">"
	    "conversion value per standard deviation more (currency units), 95%% interval</text>",
	    left + plot / 2, H - 5, HTML_MUTED);
#undef X
	fputs("</svg>", f);
}

static void
html_mix(struct html *h)
{
	const struct analytics *a = h->a;
	const struct ridge_fit *m = &a->mix;
	char b1[48], b2[48], b3[48];
	FILE *f = h->f;
	size_t j;

	fputs("<section id=\"mix\" class=\"card\"><h2>What drives conversion value</h2>"
	    "<p class=\"sub\">Ridge regression of the conversion value F on course spend C<sup>K</sup>, "
	    "learning time T<sup>K</sup> and watch time T<sup>G</sup>.</p>", f);
	if (!a->have_mix) {
		html_unavailable(f, "The content-mix model", a->mix_note);
		fputs("</section>\n", f);
		return;
	}
	fprintf(f, "<p class=\"takeaway\">Every minute of learning on K goes with <b style=\"color:%s\">"
	    "%s</b> more conversion value, every minute of watching on G with <b style=\"color:%s\">%s"
	    "</b>, and every unit spent on courses with %s more. The model explains <b>%.1f%%</b> of "
	    "conversion value on users it was not fit on.</p>", HTML_K_COLOR,
	    html_money(b1, sizeof(b1), m->coef[1]), HTML_G_COLOR, html_money(b2, sizeof(b2), m->coef[2]),
	    html_money(b3, sizeof(b3), m->coef[0] * 100.0), floor(1000.0 * m->cv_r2) / 10.0);
	fputs("<div class=\"grid2\"><div>", f);
	html_coef_chart(h);
	fputs("</div><div><table><thead><tr><th>weight</th><th>cents per unit</th><th>per SD</th>"
	    "<th>95% interval</th></tr></thead><tbody>", f);
	for (j = 0; j < m->p; j++) {
		static const char *const greek[] = { "&gamma;", "&alpha;", "&beta;" };
		int col = analytics_mix_cols[j];

		fprintf(f, "<tr><td><span class=\"dot\" style=\"background:%s\"></span>%s %s</td>"
		    "<td class=\"num\">%.4g</td><td class=\"num\">%s</td><td class=\"num\">%s&ndash;%s"
		    "</td></tr>", html_feature_is_k(col) ? HTML_K_COLOR : HTML_G_COLOR, greek[j],
		    html_feature_label(col), m->coef[j], html_money(b1, sizeof(b1), m->coef_std[j]),
		    html_money(b2, sizeof(b2), m->boot_lo[j]), html_money(b3, sizeof(b3), m->boot_hi[j]));
	}
	fprintf(f, "</tbody></table><p class=\"note\">&alpha; is the knowledge-content weight and &beta; "
	    "the live-stream weight (conversion cents per minute); &gamma; is per cent of course spend. "
	    "Intercept %.4g cents. Penalty &lambda; = %.4g chosen by %zu-fold cross-validation; held-out "
	    "R&sup2; %.4f (fit on all rows %.4f); %s rows; intervals from %u bootstrap resamples.</p>"
	    "</div></div></section>\n", m->intercept, m->lambda, m->folds, m->cv_r2, m->r2_train,
	    html_count(b1, sizeof(b1), (double)m->n), m->bootstrap);
}

/* The content mix from the DP ridge release (dpmodel.h): no row behind it. */
static void
html_dp_mix(struct html *h)
{
	const struct analytics *a = h->a;
	const struct dpmodel_ridge_fit *m = &a->dpmix;
	char b1[48], b2[48], b3[48];
	FILE *f = h->f;
	size_t j;

	fputs("<section id=\"mix\" class=\"card\"><h2>What drives conversion value</h2>"
	    "<p class=\"sub\">Ridge regression of the conversion value F on course spend C<sup>K</sup>, "
	    "learning time T<sup>K</sup> and watch time T<sup>G</sup>, fit on the gateway&rsquo;s "
	    "differentially private sufficient statistics.</p>", f);
	fprintf(f, "<p class=\"takeaway\">Every minute of learning on K goes with <b style=\"color:%s\">"
	    "%s</b> more conversion value, every minute of watching on G with <b style=\"color:%s\">%s"
	    "</b>, and every unit spent on courses with %s more.</p>", HTML_K_COLOR,
	    html_money(b1, sizeof(b1), m->coef[1]), HTML_G_COLOR, html_money(b2, sizeof(b2), m->coef[2]),
	    html_money(b3, sizeof(b3), m->coef[0] * 100.0));
	fputs("<table><thead><tr><th>weight</th><th>cents per unit</th><th>95% interval (with the DP noise)"
	    "</th><th>share of the DP noise</th></tr></thead><tbody>", f);
	for (j = 0; j < m->p && j < ANALYTICS_MIX_FEATURES; j++) {
		static const char *const greek[] = { "&gamma;", "&alpha;", "&beta;" };
		int col = analytics_mix_cols[j];

		fprintf(f, "<tr><td><span class=\"dot\" style=\"background:%s\"></span>%s %s</td>"
		    "<td class=\"num\">%.4g</td><td class=\"num\">%.4g&ndash;%.4g</td><td class=\"num\">%.0f%%"
		    "</td></tr>", html_feature_is_k(col) ? HTML_K_COLOR : HTML_G_COLOR, greek[j],
		    html_feature_label(col), m->coef[j], m->lo95[j], m->hi95[j], 100 * m->noise_share[j]);
	}
	fprintf(f, "</tbody></table><p class=\"note\">&alpha; is the knowledge-content weight and &beta; "
	    "the live-stream weight (conversion cents per minute); &gamma; is per cent of course spend. "
	    "Intercept %.4g cents; ridge &lambda; = %.4g (AdaSSP); intervals from %u parametric bootstrap "
	    "replicates that redraw the published DP noise and the sample. This figure spent "
	    "<b>&rho; = %.4g</b>.</p></section>\n", m->intercept, m->lambda, m->bootstrap, m->rho);
}

/* The segments from the DP k-means release: shares from its noisy counts. */
static void
html_dp_segments(struct html *h)
{
	const struct analytics *a = h->a;
	const struct dpmodel_kmeans_release *k = &a->dpseg;
	FILE *f = h->f;
	size_t i, t;

	fprintf(f, "<section id=\"segments\" class=\"card\"><h2>Audience segments</h2><p class=\"sub\">"
	    "Differentially private k-means (%u steps%s) at the gateway; shares from the noisy counts "
	    "(noise standard deviation %.1f people a count). This figure spent <b>&rho; = %.4g</b>.</p>"
	    "<table><thead><tr><th>segment</th><th>share</th>", k->steps, k->log1p ? ", log scale" : "",
	    k->count_noise_sd, k->rho);
	for (t = 0; t < k->d; t++)
		html_wrap(f, "<th>centre: ", k->names[t], "</th>");
	fputs("</tr></thead><tbody>", f);
	for (i = 0; i < k->k; i++) {
		fprintf(f, "<tr><td><span class=\"dot\" style=\"background:%s\"></span>", html_seg_colors[i % 16]);
		html_esc(f, a->dpseg_name[i]);
		fprintf(f, "</td><td class=\"num\">%.1f%%</td>", 100 * k->share[i]);
		for (t = 0; t < k->d; t++)
			fprintf(f, "<td class=\"num\">%.4g</td>", k->centre[i][t]);
		fputs("</tr>", f);
	}
	fputs("</tbody></table></section>\n", f);
}

/* ---- segments ---------------------------------------------------------------- */

static void
html_segment_sizes(struct html *h)
{
	const struct segments *s = h->a->seg;
	const int W = 1000, H = 86, barh = 40;
	double x = 0.0, total = 0.0;
	FILE *f = h->f;
	size_t i;

	for (i = 0; i < s->nseg; i++)
		total += (double)s->seg[i].size;
	fprintf(f, "<svg id=\"segment-sizes\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" "
	    "aria-label=\"Segment sizes\" xmlns=\"http://www.w3.org/2000/svg\">", W, H);
	for (i = 0; i < s->nseg; i++) {
		const struct segment *g = &s->seg[i];
		double w = (double)W * (double)g->size / total;
		char b[48];

		fprintf(f, "<rect class=\"seg-bar\" x=\"%.1f\" y=\"0\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
		    "<title>", x, fmax(w - 2.0, 1.0), barh, html_seg_colors[i % 16]);
		html_esc(f, g->name);
		fprintf(f, ": %s users</title></rect>", html_count(b, sizeof(b), (double)g->size));
		if (w > 90) {
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"15\" font-weight=\"700\" fill=\"#fff\">"
			    "%.0f%%</text>", x + 12, barh / 2 + 6, 100.0 * (double)g->size / total);
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"%s\">", x + 2, barh + 22,
			    HTML_INK);
			html_esc(f, g->name);
			fprintf(f, "</text><text x=\"%.1f\" y=\"%d\" font-size=\"12\" fill=\"%s\">%s users</text>",
			    x + 2, barh + 40, HTML_MUTED, html_count(b, sizeof(b), (double)g->size));
		}
		x += w;
	}
	fputs("</svg>", f);
}

/* Diverging bars of the segment's center in standard deviations, -2..+2. */
static void
html_profile(FILE *f, const struct segment *g, const char *color)
{
	static const char *const words[SEGMENTS_FEATURES] = { "Learning", "Watching", "Streams" };
	const int W = 300, rowh = 22, left = 84, plot = 200;
	int c;

	fprintf(f, "<svg class=\"profile\" viewBox=\"0 0 %d %d\" width=\"100%%\" "
	    "xmlns=\"http://www.w3.org/2000/svg\">", W, rowh * SEGMENTS_FEATURES + 14);
	fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"0\" y2=\"%d\" stroke=\"#94a3b8\"/>", left + plot / 2,
	    left + plot / 2, rowh * SEGMENTS_FEATURES);
	for (c = 0; c < SEGMENTS_FEATURES; c++) {
		double z = fmax(-2.0, fmin(2.0, g->center_z[c]));
		double x0 = left + plot / 2.0 + (z < 0 ? z * plot / 4.0 : 0.0);

		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\" text-anchor=\"end\">%s</text>",
		    left - 8, rowh * c + 15, HTML_MUTED, words[c]);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" fill=\"#f1f5f9\" rx=\"3\"/>",
		    left, rowh * c + 4, plot);
		fprintf(f, "<rect class=\"profile-bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"14\" "
		    "fill=\"%s\" rx=\"3\"><title>%+.2f standard deviations</title></rect>", x0, rowh * c + 4,
		    fmax(fabs(z) * plot / 4.0, 1.0), color, g->center_z[c]);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">below average</text>"
	    "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\" text-anchor=\"end\">above average</text>",
	    left, rowh * SEGMENTS_FEATURES + 12, HTML_MUTED, left + plot, rowh * SEGMENTS_FEATURES + 12,
	    HTML_MUTED);
	fputs("</svg>", f);
}

static void
html_chips(struct html *h, const struct segment *g, int col, const char *cls)
{
	char b[48];
	size_t t;

	for (t = 0; t < g->ntop[col]; t++) {
		fprintf(h->f, "<span class=\"chip%s\">", cls);
		html_esc(h->f, report_level_name(h->a, col, g->top[col][t].level));
		fprintf(h->f, " &middot; %s</span>", html_count(b, sizeof(b), (double)g->top[col][t].count));
	}
}

static void
html_segments(struct html *h)
{
	const struct analytics *a = h->a;
	const struct segments *s = a->seg;
	FILE *f = h->f;
	char b[48], b2[48];
	size_t i;

	fputs("<section id=\"segments\" class=\"card\"><h2>Audience segments</h2>", f);
	if (s == NULL || s->nseg == 0) {
		html_unavailable(f, "Segmentation", s == NULL ? a->seg_note : a->seg_note);
		fputs("</section>\n", f);
		return;
	}
	fprintf(f, "<p class=\"sub\">k-means on learning time, watch time and streams followed "
	    "(log scale, standardized); %zu segments%s.</p>", s->nseg,
	    s->k_by_silhouette ? ", their number chosen by the silhouette" : "");
	html_segment_sizes(h);
	fputs("<div class=\"segs\">", f);
	for (i = 0; i < s->nseg; i++) {
		const struct segment *g = &s->seg[i];
		const char *color = html_seg_colors[i % 16];
		int c;

		fprintf(f, "<div class=\"seg\" style=\"border-top-color:%s\"><h3>", color);
		html_esc(f, g->name);
		fprintf(f, "</h3><div class=\"meta\">%s users &middot; %.0f%% &middot; ",
		    html_count(b, sizeof(b), (double)g->size), 100.0 * (double)g->size / (double)s->rows_used);
		html_esc(f, g->traits);
		fputs("</div>", f);
		html_profile(f, g, color);
		fputs("<div class=\"chips\">", f);
		html_chips(h, g, DATASET_COURSE_CAT, "");
		html_chips(h, g, DATASET_GAME_CAT, " g");
		html_chips(h, g, DATASET_AGE, " q");
		fputs("</div><table class=\"mini\"><tbody>", f);
		for (c = 0; c < DATASET_NUM_COLS; c++) {
			int money = c == DATASET_SPEND || c == DATASET_CONV || c == DATASET_GIFT;

			if (!isfinite(g->mean[c]))
				continue;
			fprintf(f, "<tr><td>%s <span class=\"note\">(average)</span></td><td class=\"num\">%s%s"
			    "</td></tr>", html_feature_label(c), money ? html_money(b2, sizeof(b2), g->mean[c]) :
			    html_count(b2, sizeof(b2), g->mean[c]), c == DATASET_LEARN || c == DATASET_WATCH ?
			    " min" : "");
		}
		fputs("</tbody></table></div>", f);
	}
	fputs("</div>", f);
	fprintf(f, "<p class=\"note\">Chips: dominant course categories (indigo), game categories (orange) "
	    "and age bands (grey), with their counts. %zu cluster%s below the threshold of %u merged into "
	    "the nearest; %s rows without the clustering features left out.</p></section>\n", s->merged,
	    s->merged == 1 ? "" : "s", a->threshold,
	    html_count(b, sizeof(b), (double)(a->rows - s->rows_used)));
}

/* ---- affinity ---------------------------------------------------------------- */

/* Order of levels by marginal count, largest first (withheld last). */
static void
html_order(const double *count, size_t n, size_t *ord)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		ord[i] = i;
	for (i = 1; i < n; i++) {
		size_t v = ord[i];
		double cv = isfinite(count[v]) ? count[v] : -1.0;

		for (j = i; j > 0 && (isfinite(count[ord[j - 1]]) ? count[ord[j - 1]] : -1.0) < cv; j--)
			ord[j] = ord[j - 1];
		ord[j] = v;
	}
}

static void
html_heatmap(struct html *h, const size_t *rord, const size_t *cord)
{
	const struct affinity *af = h->a->aff;
	size_t nc = af->course.n, ng = af->game.n, r, c;
	const int cell = 76, left = 176, top = 64;
	int W = left + cell * (int)ng + 20, H = top + cell * (int)nc + 70;
	FILE *f = h->f;
	char fill[16], b[48];

	fprintf(f, "<svg id=\"affinity-heatmap\" viewBox=\"0 0 %d %d\" width=\"100%%\" "
	    "style=\"max-width:%dpx\" role=\"img\" aria-label=\"Lift of course and game category pairs\" "
	    "xmlns=\"http://www.w3.org/2000/svg\"><defs><pattern id=\"hatch\" width=\"8\" height=\"8\" "
	    "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" "
	    "fill=\"#f8fafc\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#cbd5e1\" "
	    "stroke-width=\"3\"/></pattern><linearGradient id=\"liftscale\"><stop offset=\"0\" "
	    "stop-color=\"#2563eb\"/><stop offset=\"0.5\" stop-color=\"#ffffff\"/><stop offset=\"1\" "
	    "stop-color=\"%s\"/></linearGradient></defs>", W, H, W, HTML_G_COLOR);
	fprintf(f, "<text x=\"%d\" y=\"16\" font-size=\"12\" fill=\"%s\" font-weight=\"600\">"
	    "G: top game category &rarr;</text>", left, HTML_G_COLOR);
	for (c = 0; c < ng; c++) {
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\" text-anchor=\"middle\">",
		    left + cell * (int)c + cell / 2, top - 24, HTML_INK);
		html_esc(f, af->game.names[cord[c]]);
		fprintf(f, "</text><text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\" "
		    "text-anchor=\"middle\">%s</text>", left + cell * (int)c + cell / 2, top - 10, HTML_MUTED,
		    html_count(b, sizeof(b), af->game_count[cord[c]]));
	}
	for (r = 0; r < nc; r++) {
		int y = top + cell * (int)r;

		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\" text-anchor=\"end\">",
		    left - 10, y + cell / 2, HTML_INK);
		html_esc(f, af->course.names[rord[r]]);
		fprintf(f, "</text><text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\" text-anchor=\"end\">"
		    "%s</text>", left - 10, y + cell / 2 + 14, HTML_MUTED,
		    html_count(b, sizeof(b), af->course_count[rord[r]]));
		for (c = 0; c < ng; c++) {
			const struct affinity_pair *p = &af->pairs[rord[r] * ng + cord[c]];
			int x = left + cell * (int)c;

			if (!p->released) {
				fprintf(f, "<rect class=\"cell withheld\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
				    "fill=\"url(#hatch)\" stroke=\"#fff\" stroke-width=\"2\"><title>withheld: fewer "
				    "than %u users</title></rect>", x, y, cell, cell, h->a->threshold);
				continue;
			}
			{
				/* log2(lift) on a symmetric scale: 0.33x and 3x are the ends. */
				double t = log2(p->lift) / log2(3.0);

				html_tint(fill, sizeof(fill), t >= 0 ? HTML_G_COLOR : "#2563eb", fabs(t));
				fprintf(f, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
				    "fill=\"%s\" stroke=\"#fff\" stroke-width=\"2\"><title>", x, y, cell, cell, fill);
				html_esc(f, af->course.names[p->course]);
				fputs(" &amp; ", f);
				html_esc(f, af->game.names[p->game]);
				fprintf(f, ": %s users, support %.1f%%, confidence %.1f%%, lift %.2f</title></rect>",
				    html_count(b, sizeof(b), p->count), 100.0 * p->support, 100.0 * p->confidence,
				    p->lift);
				fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"700\" "
				    "text-anchor=\"middle\" fill=\"%s\">%.2f</text>", x + cell / 2, y + cell / 2 + 2,
				    fabs(t) > 0.6 ? "#fff" : HTML_INK, p->lift);
				fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
				    "fill=\"%s\">%s</text>", x + cell / 2, y + cell / 2 + 17,
				    fabs(t) > 0.6 ? "#fff" : HTML_MUTED, html_count(b, sizeof(b), p->count));
			}
		}
	}
	{
		int y = top + cell * (int)nc + 24, lw = 240;

		fprintf(f, "<text x=\"4\" y=\"%d\" font-size=\"12\" fill=\"%s\" font-weight=\"600\">"
		    "K: top course category &darr;</text>", top - 4, HTML_K_COLOR);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"12\" fill=\"url(#liftscale)\" "
		    "rx=\"3\"/>", left, y, lw);
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\">&le;0.33</text>"
		    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\" text-anchor=\"middle\">1 "
		    "(independent)</text><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\" "
		    "text-anchor=\"end\">&ge;3 lift</text>", left, y + 28, HTML_MUTED, left + lw / 2, y + 28,
		    HTML_MUTED, left + lw, y + 28, HTML_MUTED);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"12\" fill=\"url(#hatch)\"/>"
		    "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"%s\">withheld (fewer than %u users)</text>",
		    left + lw + 30, y, left + lw + 60, y + 10, HTML_MUTED, h->a->threshold);
	}
	fputs("</svg>", f);
}

static void
html_affinity(struct html *h)
{
	const struct analytics *a = h->a;
	const struct affinity *af = a->aff;
	size_t *rord = NULL, *cord = NULL, i;
	FILE *f = h->f;
	char b[48];

	fputs("<section id=\"affinity\" class=\"card\"><h2>Which course categories go with which game "
	    "categories</h2>", f);
	if (af == NULL) {
		html_unavailable(f, "The affinity analysis", a->aff_note);
		fputs("</section>\n", f);
		return;
	}
	fprintf(f, "<p class=\"sub\">Lift of each pair: how much more often a K user whose top course "
	    "category is the row&rsquo;s has the column&rsquo;s game category than G users overall "
	    "(1 = no association). From %s.</p>", af->source == AFFINITY_FROM_EXPORT ?
	    "the export&rsquo;s exact counts" : "the released DP aggregates (noisy counts; marginals are "
	    "sums of the released pairs)");
	rord = malloc((af->course.n + 1) * sizeof(*rord));
	cord = malloc((af->game.n + 1) * sizeof(*cord));
	if (rord != NULL && cord != NULL) {
		html_order(af->course_count, af->course.n, rord);
		html_order(af->game_count, af->game.n, cord);
		html_heatmap(h, rord, cord);
	}
	free(rord);
	free(cord);
	fputs("<h3>Strongest rules</h3><table><thead><tr><th>course category &rarr; game category</th>"
	    "<th>users</th><th>support</th><th>confidence</th><th>lift</th></tr></thead><tbody>", f);
	for (i = 0; i < af->released && i < 8; i++) {
		const struct affinity_pair *p = &af->pairs[af->rules[i]];

		fputs("<tr><td>", f);
		html_esc(f, af->course.names[p->course]);
		fputs(" &rarr; ", f);
		html_esc(f, af->game.names[p->game]);
		fprintf(f, "</td><td class=\"num\">%s</td><td class=\"num\">%.1f%%</td><td class=\"num\">"
		    "%.1f%%</td><td class=\"num\"><b>%.2f</b></td></tr>", html_count(b, sizeof(b), p->count),
		    100.0 * p->support, 100.0 * p->confidence, p->lift);
	}
	fprintf(f, "</tbody></table><p class=\"note\">%zu of %zu pairs released; %zu withheld for "
	    "counting fewer than %u users.</p></section>\n", af->released, af->released + af->withheld,
	    af->withheld, a->threshold);
}

/* ---- provenance ------------------------------------------------------------ */

static void
html_dd(FILE *f, const char *dt, const char *dd)
{
	fprintf(f, "<dt>%s</dt>", dt);
	html_wrap(f, "<dd>", dd, "</dd>");
}

static void
html_provenance(struct html *h)
{
	const struct analytics *a = h->a;
	const struct provenance *p = &a->prov;
	FILE *f = h->f;
	char b[64];

	fprintf(f, "<section id=\"provenance\" class=\"card prov%s\"><h2>Where these numbers come from</h2>",
	    p->known ? "" : " unknown");
	if (!p->known) {
		fputs("<p class=\"sub\"><b>Provenance unknown.</b> ", f);
		html_esc(f, a->prov_note);
		fputs(". Without the export&rsquo;s sidecar these numbers cannot be traced to an audit "
		    "event.</p><dl>", f);
	} else {
		if (a->have_dpmix || a->have_dpseg)
			fputs("<p class=\"sub\">Every number in this report is computed from the DP releases listed "
			    "here, each an event of the gateway&rsquo;s audit log (<code>crossgate audit show</code> "
			    "or <code>audit prove --event N</code> finds it); the details below are the first "
			    "one&rsquo;s.</p><dl>", f);
		else
			fputs("<p class=\"sub\">Every number in this report is computed from this one release, "
			    "which is an event of the gateway&rsquo;s audit log: <code>crossgate audit show</code> "
			    "or <code>audit prove --event N</code> finds it.</p><dl>", f);
		html_dd(f, p->query ? "query id" : "export id", p->export_id);
		html_dd(f, "purpose", p->purpose);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)p->k);
		if (!p->query)
			html_dd(f, "k-anonymity", b);
		if (p->l > 0) {
			snprintf(b, sizeof(b), "%llu", (unsigned long long)p->l);
			html_dd(f, "l-diversity", b);
		}
		snprintf(b, sizeof(b), "%llu exported, %llu suppressed", (unsigned long long)p->rows,
		    (unsigned long long)p->suppressed);
		if (!p->query)
			html_dd(f, "rows", b);
		html_dd(f, "policy hash", p->policy_hash);
		if (p->analyst[0] != '\0')
			html_dd(f, "analyst", p->analyst);
		if (p->sensitive[0] != '\0')
			html_dd(f, "sensitive columns", p->sensitive);
		if (p->audit_index >= 0) {
			snprintf(b, sizeof(b), "%lld", (long long)p->audit_index);
			html_dd(f, "audit event", b);
		}
		if (p->created[0] != '\0')
			html_dd(f, "created", p->created);
	}
	if (a->opts.export_path != NULL)
		html_dd(f, "export file", a->opts.export_path);
	if (a->opts.aggregates_path != NULL)
		html_dd(f, "aggregates file", a->opts.aggregates_path);
	if (a->have_dpmix) {
		html_dd(f, "ridge release", a->opts.ridge_path);
		html_dd(f, "ridge query id", a->dprel.query_id);
	}
	if (a->have_dpseg) {
		html_dd(f, "k-means release", a->opts.kmeans_path);
		html_dd(f, "k-means query id", a->dpseg.query_id);
	}
	snprintf(b, sizeof(b), "%llu rows read", (unsigned long long)a->rows);
	html_dd(f, "input", b);
	snprintf(b, sizeof(b), "%u (no count below it is shown)", a->threshold);
	html_dd(f, "threshold", b);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)a->opts.seed);
	html_dd(f, "random seed", b);
	fputs("</dl></section>\n", f);
}

/* An interval on an axis that includes 0: the line (line.ci), the estimate (circle.est) and 0 (line.zero). */
static void
html_interval_svg(FILE *f, const char *id, const struct activation_interval *iv)
{
	double lo = iv->lo < 0 ? iv->lo : 0, hi = iv->hi > 0 ? iv->hi : 0, w = 520, pad = 20, span;

	span = hi - lo > 0 ? hi - lo : 1;
#define HX(v) (pad + ((v) - lo) / span * (w - 2 * pad))
	fprintf(f, "<svg id=\"%s\" width=\"%.0f\" height=\"44\" viewBox=\"0 0 %.0f 44\" role=\"img\">"
	    "<line class=\"zero\" x1=\"%.1f\" x2=\"%.1f\" y1=\"4\" y2=\"40\" stroke=\"#94a3b8\" "
	    "stroke-dasharray=\"3 3\"/><line class=\"ci\" x1=\"%.1f\" x2=\"%.1f\" y1=\"22\" y2=\"22\" "
	    "stroke=\"#2563eb\" stroke-width=\"4\"/><circle class=\"est\" cx=\"%.1f\" cy=\"22\" r=\"6\" "
	    "fill=\"#1e3a8a\"/></svg>", id, w, w, HX(0), HX(0), HX(iv->lo), HX(iv->hi), HX(iv->est));
#undef HX
}

/* Activation and experiment: noisy audience size, the lift with its interval, the rho they spent. */
static void
html_activation(struct html *h)
{
	const struct activation *c = &h->a->act;
	FILE *f = h->f;

	if (!c->have_audience && !c->have_lift)
		return;
	fputs("<section id=\"activation\" class=\"card\"><h2>Activation and experiment</h2><p class=\"sub\">"
	    "An audience defined under the purpose marketing, an A/B experiment on it (treatment reached by the "
	    "campaign, control held out), and the campaign&rsquo;s lift measured with differential privacy. "
	    "Every figure here is noisy; the intervals include the noise.</p><dl>", f);
	if (c->have_audience) {
		fputs("<dt>audience</dt><dd>", f);
		html_esc(f, c->audience);
		fprintf(f, ": noisy size <b class=\"audience-size\">%.0f</b> (&rho; %.4g)</dd>", c->audience_noisy,
		    c->audience_rho);
	}
	if (c->have_lift) {
		fputs("<dt>experiment</dt><dd>", f);
		html_esc(f, c->experiment);
		fputs(", campaign by partner ", f);
		html_esc(f, c->partner);
		fprintf(f, ": noisy arms control %.0f, treatment %.0f</dd>", c->n[0], c->n[1]);
		fprintf(f, "<dt>conversion rate</dt><dd>control %.2f%%, treatment %.2f%%</dd>", c->rate[0] * 100,
		    c->rate[1] * 100);
		fprintf(f, "<dt>conversion lift</dt><dd class=\"lift-rate\"><b>%+.2f points</b> (%.4g%% interval "
		    "%+.2f to %+.2f)</dd>", c->rate_diff.est * 100, c->confidence * 100, c->rate_diff.lo * 100,
		    c->rate_diff.hi * 100);
		if (c->rel_ok)
			fprintf(f, "<dt>relative lift</dt><dd>%+.1f%% (%+.1f%% to %+.1f%%)</dd>", c->rate_rel.est * 100,
			    c->rate_rel.lo * 100, c->rate_rel.hi * 100);
		fprintf(f, "<dt>value per subject</dt><dd class=\"lift-value\">%+.2f (%+.2f to %+.2f), values capped "
		    "at %.2f</dd>", c->value_diff.est / 100, c->value_diff.lo / 100, c->value_diff.hi / 100,
		    c->value_cap / 100);
	}
	fprintf(f, "<dt>&rho; spent</dt><dd class=\"act-rho\">%.4g</dd></dl>",
	    (c->have_audience ? c->audience_rho : 0) + (c->have_lift ? c->rho : 0));
	if (c->have_lift) {
		fputs("<p class=\"note\">The conversion lift&rsquo;s interval (blue) against 0 (dashed):</p>", f);
		html_interval_svg(f, "lift-interval", &c->rate_diff);
	}
	fputs("</section>\n", f);
}

int
html_write(const struct analytics *a, const char *path, struct cg_err *err)
{
	struct outfile of;
	struct html h;
	int rc;

	h.a = a;
	if ((rc = outfile_open(&of, path, 0600, err)) != 0)
		return rc;
	h.f = of.f;
	html_header(&h);
	if (a->have_dpmix)
		html_dp_mix(&h);
	else
		html_mix(&h);
	if (a->have_dpseg)
		html_dp_segments(&h);
	else
		html_segments(&h);
	html_affinity(&h);
	if (a->aff_rho > 0)
		fprintf(h.f, "<p class=\"note\">The affinity above spent <b>&rho; = %.4g</b> (DP counts).</p>\n",
		    a->aff_rho);
	html_activation(&h);
	html_provenance(&h);
	fputs("</main><footer>Made by <code>crossgate analytics report</code> from released outputs only: "
	    "it reads no store, token or key. ", h.f);
	fputs(a->have_dpmix || a->have_dpseg ? "The models are fit on the gateway&rsquo;s differentially private "
	    "statistics (<code>crossgate query --model</code>); " : "Ridge and k-means follow scikit-learn&rsquo;s "
	    "definitions and are checked against it; ", h.f);
	fputs("see <code>--format json</code> and <code>--format csv</code> for the numbers behind every chart."
	    "</footer></body></html>\n", h.f);
	/* a write error is kept by the stream: commit sees it and removes the file */
	return outfile_commit(&of, err);
}

/* export.c - see export.h */
#include "gateway/export.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "base/outfile.h"
#include "gateway/budget.h"
#include "gateway/join.h"
#include "gateway/synthrel.h"

#define EXPORT_ROWS_GROW 65536

static double
export_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The subjects' bins, row by row, as join_each hands them over. */
struct export_codes {
	const struct synthrel_schema *s;
	uint16_t *codes;
	size_t n, cap;
};

static int
export_collect(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	struct export_codes *x = ctx;

	(void)ref;
	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : EXPORT_ROWS_GROW;
		uint16_t *p = realloc(x->codes, ncap * x->s->ncols * sizeof(*p));

		if (p == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading the subjects");
		x->codes = p;
		x->cap = ncap;
	}
	synthrel_encode(x->s, pl, x->codes + x->n * x->s->ncols);
	x->n++;
	return 0;
}

/* The release's audit event: ok, or refused with a reason.  Counts are the mechanism's, never the data's. */
static int
export_log(struct audit *a, const struct export_opts *o, struct export_stats *stats, const char *outcome,
    const char *reason, const unsigned char *release_id, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[4], *cep[4];
	const char *names[4] = { "rho_nano", "synthetic_rows", "columns", "edges" };
	uint64_t vals[4] = { (uint64_t)stats->charged_nano, stats->rows, stats->columns, stats->edges };
	size_t i;
	int r;

	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(o->analyst != NULL ? o->analyst->name : "analyst");
	ev.action = (char *)"export";
	ev.outcome = (char *)outcome;
	ev.reason = (char *)(reason ? reason : "");
	ev.purpose = (char *)o->purpose;
	ev.policy_hash.data = (uint8_t *)o->pol->hash;
	ev.policy_hash.len = sizeof(o->pol->hash);
	if (release_id != NULL) {
		ev.batch_id.data = (uint8_t *)release_id;
		ev.batch_id.len = 16;
	}
	for (i = 0; i < 4; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		ce[i].key = (char *)names[i];
		ce[i].value = vals[i];
		cep[i] = &ce[i];
	}
	ev.counts = cep;
	ev.n_counts = 4;
	if ((r = audit_log(a, &ev, err)) == 0)
		stats->audit_index = ev.seq;
	return r;
}

static int
export_write_csv(const char *path, const struct synthrel_model *m, uint64_t rows, struct cg_err *err)
{
	struct outfile of = { 0 };
	int r;

	if ((r = outfile_open(&of, path, 0640, err)) != 0)
		return r;
	if ((r = synthrel_write_csv(m, rows, of.f, err)) == 0)
		r = outfile_commit(&of, err);
	outfile_abort(&of);
	return r;
}

static json_t *
export_nano_json(int64_t nano)
{
	char num[40];

	snprintf(num, sizeof(num), "%.9f", (double)nano / BUDGET_NANO);
	return json_string(num);
}

static int
export_write_meta(const char *path, const struct export_opts *o, const char *dataset, const char *left,
    const char *right, const struct synthrel_schema *s, const struct synthrel_model *m, int64_t rho_nano,
    const struct export_stats *stats, struct cg_err *err)
{
	const struct synthrel_params *par = synthrel_model_params(m);
	json_t *meta = json_object(), *cols = json_array(), *edges = json_array(), *omitted = json_array();
	json_t *noise = json_object(), *split = json_object();
	size_t e[SYNTHREL_COLS_MAX][2], ne, i, b;
	struct outfile of = { 0 };
	char *mpath = NULL, hash[65], when[32];
	time_t now = time(NULL);
	struct tm tm;
	int r = 0;

	if (meta == NULL || cols == NULL || edges == NULL || omitted == NULL || noise == NULL || split == NULL ||
	    (mpath = malloc(strlen(path) + 16)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	sprintf(mpath, "%s.meta.json", path);
	sodium_bin2hex(hash, sizeof(hash), o->pol->hash, sizeof(o->pol->hash));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (i = 0; i < s->ncols; i++) {
		json_t *c = json_object(), *bins = json_array();

		for (b = 0; b < s->cols[i].nbins; b++)
			json_array_append_new(bins, json_string(s->cols[i].labels[b]));
		json_object_set_new(c, "name", json_string(s->cols[i].name));
		json_object_set_new(c, "bins", bins);
		json_array_append_new(cols, c);
	}
	for (i = 0; i < s->nomitted; i++)
		json_array_append_new(omitted, json_string(s->omitted[i]));
	ne = synthrel_model_edges(m, e, SYNTHREL_COLS_MAX);
	for (i = 0; i < ne; i++)
		json_array_append_new(edges, json_pack("[ss]", s->cols[e[i][0]].name, s->cols[e[i][1]].name));
	json_object_set_new(split, "one_way", export_nano_json(par->rho1_nano));
	json_object_set_new(split, "selection", export_nano_json(par->rho_sel_nano));
	json_object_set_new(split, "two_way", export_nano_json(par->rho2_nano));
	json_object_set_new(noise, "one_way_sigma", json_real(sqrt((double)par->var1_num / (double)par->var1_den)));
	json_object_set_new(noise, "two_way_sigma", par->var2_den ? json_real(sqrt((double)par->var2_num /
	    (double)par->var2_den)) : json_null());
	json_object_set_new(noise, "selection_epsilon_per_round", json_real(par->eps_round));
	json_object_set_new(noise, "distribution", json_string("discrete Gaussian (Canonne, Kamath, Steinke 2020)"));
	json_object_set_new(meta, "release_id", json_string(stats->release_id));
	json_object_set_new(meta, "purpose", json_string(o->purpose));
	json_object_set_new(meta, "analyst", json_string(o->analyst->name));
	json_object_set_new(meta, "dataset", json_string(dataset));
	json_object_set_new(meta, "mechanism", json_string("MST (McKenna, Miklau, Sheldon 2021): noisy 1-way marginals, "
	    "a spanning tree of 2-way marginals chosen by the exponential mechanism, the tree's noisy 2-way marginals, "
	    "a tree model fitted to them, rows sampled from it; rho-zCDP, one subject counts once"));
	json_object_set_new(meta, "rho", export_nano_json(rho_nano));
	json_object_set_new(meta, "rho_split", split);
	split = NULL;
	json_object_set_new(meta, "remaining_rho", export_nano_json(stats->remaining_nano));
	json_object_set_new(meta, "noise", noise);
	noise = NULL;
	json_object_set_new(meta, "columns", cols);
	cols = NULL;
	json_object_set_new(meta, "omitted", omitted);
	omitted = NULL;
	json_object_set_new(meta, "edges", edges);
	edges = NULL;
	json_object_set_new(meta, "synthetic_rows", json_integer((json_int_t)stats->rows));
	json_object_set_new(meta, "rows_from", json_string(o->rows > 0 ? "requested" : "noisy estimate"));
	json_object_set_new(meta, "binning", json_string("int features: bounds [lo, hi] in equal-width integer bins; "
	    "bands: the finest policy level with at most 100 bands between min and max; maps: their groups; "
	    "categories: their values; '*': missing or outside the domain"));
	json_object_set_new(meta, "policy_hash", json_string(hash));
	json_object_set_new(meta, "audit_index", json_integer((json_int_t)stats->audit_index));
	json_object_set_new(meta, "created", json_string(when));
	json_object_set_new(meta, "left", json_string(left));
	json_object_set_new(meta, "right", json_string(right));
	if ((r = outfile_open(&of, mpath, 0640, err)) == 0) {
		if (json_dumpf(meta, of.f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
			r = cg_err_set(err, CG_ERR_IO, "cannot write %s", mpath);
		r = r != 0 ? r : outfile_commit(&of, err);
		outfile_abort(&of);
	}
out:
	json_decref(meta);
	json_decref(cols);
	json_decref(edges);
	json_decref(omitted);
	json_decref(noise);
	json_decref(split);
	free(mpath);
	return r;
}

/* Refuse with an audit event; the message is for the analyst. */
static int
export_refuse(struct audit *a, const struct export_opts *o, struct export_stats *stats, const char *reason,
    const unsigned char *release_id, int code, struct cg_err *err)
{
	struct cg_err why = *err;
	int r;

	if ((r = export_log(a, o, stats, "refused", reason, release_id, err)) != 0)
		return r;
	*err = why;
	return code;
}

int
export_run(struct store *st, struct audit *a, const struct export_opts *o, struct export_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = o->pol;
	struct join pre, j;
	struct join_col *cols = NULL;
	struct synthrel_schema *schema = NULL;
	struct synthrel_model *model = NULL;
	struct export_codes x = { 0 };
	unsigned char release_id[16];
	char dataset[80];
	size_t ncols = 0, nqi = 0;
	uint64_t used = 0, no_consent = 0;
	int64_t rho;
	uint32_t cap;
	double t0;
	int pbit, r;

	memset(stats, 0, sizeof(*stats));
	memset(&j, 0, sizeof(j));
	memset(&pre, 0, sizeof(pre));
	randombytes_buf(release_id, sizeof(release_id));
	sodium_bin2hex(stats->release_id, sizeof(stats->release_id), release_id, sizeof(release_id));
	if ((pbit = policy_purpose_bit(pol, o->purpose)) < 0)
		return cg_err_set(err, CG_ERR_POLICY, "purpose '%.64s' is not in the policy", o->purpose);
	if (o->analyst == NULL || !policy_principal_may_row_export(pol, o->analyst, o->purpose)) {
		cg_err_set(err, CG_ERR_POLICY, "analyst '%s' may not take row exports for purpose '%s' (the policy's "
		    "row_exports); use aggregates (crossgate query)", o->analyst ? o->analyst->name : "?", o->purpose);
		return export_refuse(a, o, stats, "no row exports for this analyst and purpose (policy row_exports)", NULL,
		    CG_ERR_POLICY, err);
	}
	rho = o->rho_nano > 0 ? o->rho_nano : pol->privacy.export_rho_nano;
	if (o->rows > SYNTHREL_ROWS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "synthetic release: at most %llu rows may be asked for",
		    (unsigned long long)SYNTHREL_ROWS_MAX);

	/* The columns and their bins come from the policy alone: a refusal here says nothing about the data. */
	if (pol->npartners < 2 && (o->left == NULL || o->right == NULL))
		return cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
	pre.side[0] = policy_partner_find(pol, o->left ? o->left : pol->partners[0].id);
	pre.side[1] = policy_partner_find(pol, o->right ? o->right : pol->partners[1].id);
	if (pre.side[0] == NULL || pre.side[1] == NULL || pre.side[0] == pre.side[1])
		return cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");
	join_dataset(&pre, dataset, sizeof(dataset));
	if ((cols = calloc(JOIN_COLS_MAX, sizeof(*cols))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	join_columns(&pre, pbit, cols, &ncols, &nqi);
	if ((r = synthrel_schema_make(cols, ncols, o->bins, &schema, err)) != 0) {
		if (r == CG_ERR_POLICY || r == CG_ERR_LIMIT)
			r = export_refuse(a, o, stats, "no domain to release a column by, or tables too large", release_id, r,
			    err);
		goto out;
	}
	stats->columns = schema->ncols;
	stats->omitted = schema->nomitted;

	/* The cap is checked before the charge, so that a capped analyst loses no budget to a refusal. */
	cap = policy_principal_max_exports(pol, o->analyst);
	if ((r = budget_exports_used(st, o->analyst->name, &used, err)) != 0)
		goto out;
	if (used >= cap) {
		r = budget_export_charge(st, a, o->analyst->name, o->purpose, cap, err);
		r = r != 0 ? r : cg_err_set(err, CG_ERR_INTERNAL, "the export cap changed under the release");
		goto out;
	}
	/* The charge, committed before a single subject is read; no refunds. */
	r = budget_charge(st, a, o->analyst->name, dataset, rho, policy_principal_budget(pol, o->analyst), o->purpose,
	    &stats->remaining_nano, err);
	if (r == CG_ERR_POLICY) {
		cg_err_set(err, CG_ERR_POLICY, "synthetic release refused: nothing is released once the budget is spent; "
		    "it needs rho %.9f and '%s' has %.9f of %.9f left on '%s'", (double)rho / BUDGET_NANO,
		    o->analyst->name, (double)stats->remaining_nano / BUDGET_NANO,
		    (double)policy_principal_budget(pol, o->analyst) / BUDGET_NANO, dataset);
		goto out;
	}
	if (r != 0)
		goto out;
	stats->charged_nano = rho;
	if ((r = budget_export_charge(st, a, o->analyst->name, o->purpose, cap, err)) != 0)
		goto out;

	if ((r = join_run_open(st, pol, o->storage, o->left, o->right, &j, err)) != 0)
		goto out;
	stats->load_seconds = j.load_seconds;
	stats->join_seconds = j.join_seconds;
	t0 = export_now();
	x.s = schema;
	if ((r = join_each(st, o->storage, &j, pbit, JOIN_BOTH, export_collect, &x, &no_consent, err)) != 0)
		goto out;
	stats->collect_seconds = export_now() - t0;
	t0 = export_now();
	if ((r = synthrel_fit(schema, x.codes, x.n, rho, 0, &model, err)) != 0)
		goto out;
	stats->edges = schema->ncols - 1;
	stats->fit_seconds = export_now() - t0;
	t0 = export_now();
	if (o->rows > 0)
		stats->rows = o->rows;
	else {
		double est = floor(synthrel_model_rows(model) + 0.5);
		stats->rows = est > (double)SYNTHREL_ROWS_MAX ? SYNTHREL_ROWS_MAX : (uint64_t)est;
	}
	if ((r = export_write_csv(o->out_path, model, stats->rows, err)) != 0 ||
	    (r = export_log(a, o, stats, "ok", NULL, release_id, err)) != 0)
		goto out;
	r = export_write_meta(o->out_path, o, dataset, pre.side[0]->id, pre.side[1]->id, schema, model, rho, stats,
	    err);
	stats->sample_seconds = export_now() - t0;
out:
	if (x.codes != NULL)
		sodium_memzero(x.codes, x.cap * (schema ? schema->ncols : 0) * sizeof(*x.codes));
	free(x.codes);
	synthrel_model_free(model);
	synthrel_schema_free(schema);
	free(cols);
	join_free(&j);
	return r;
}

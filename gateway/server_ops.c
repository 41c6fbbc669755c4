/* server_ops.c - see server.h; the other requests: exports, queries, audit fetch, consistency proofs, cosignatures (server_int.h) */
#include "gateway/server.h"
#include "gateway/server_int.h"
#include "gateway/stats.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "net/tls.h"
#include "audit/audit.h"
#include "audit/consistency.h"
#include "gateway/export.h"
#include "gateway/model.h"
#include "gateway/query.h"
#include "gateway/audience.h"
#include "gateway/rule.h"
#include "store/store.h"
#include "net/rpc.h"

/* ---- streaming a spool file ---- */

/* Send `size` bytes of f as Chunk responses. */
static int
server_send_chunks(struct server_conn *c, FILE *f, uint64_t size, struct cg_err *err)
{
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__Chunk ch = CROSSGATE__CHUNK__INIT;
	unsigned char *b;
	uint64_t sent = 0;
	size_t n;
	int r = 0;

	if ((b = malloc(RPC_CHUNK_MAX)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	resp.result_case = CROSSGATE__RESPONSE__RESULT_CHUNK;
	resp.chunk = &ch;
	do {
		n = fread(b, 1, RPC_CHUNK_MAX, f);
		if (n == 0 && sent < size) {
			r = cg_err_set(err, CG_ERR_IO, "spool file shorter than expected");
			break;
		}
		sent += n;
		ch.data.data = b;
		ch.data.len = n;
		ch.last = sent >= size;
		if ((r = server_send(c, &resp.base, err)) != 0)
			break;
	} while (sent < size);
	sodium_memzero(b, RPC_CHUNK_MAX);    /* an answer's rows: released statistics or row exports */
	free(b);
	return r;
}

/* ---- exports and queries ---- */

/*
 * A connection of its own for a long read (an export, a query): in WAL mode
 * its reads never hold up the commits of pushes on the shared connection,
 * and its few writes (the charge, the audit event) take SQLite's write lock
 * briefly like any other process's.  The audit log reloads what the other
 * connection appended (audit.h).
 */
static int
server_reader_open(struct server *s, struct store **st, struct audit **a, struct cg_err *err)
{
	int r;

	*st = NULL;
	*a = NULL;
	if ((r = store_open(s->cfg.db_path, 0, st, err)) != 0)
		return r;
	/* a big push commits in one transaction: wait for it rather than fail the export */
	sqlite3_busy_timeout(store_db(*st), 120000);
	if ((r = audit_open(*st, s->cfg.sign, a, err)) != 0) {
		store_close(*st);
		*st = NULL;
	}
	return r;
}

/* A small file (an export's provenance) into a NUL-terminated malloc'd string. */
static int
server_slurp(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*out = NULL;
	if (f == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1 << 20 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	buf[n] = '\0';
	fclose(f);
	*out = buf;
	return 0;
}

/*
 * An export or a query: run it on a connection of its own into a spool file
 * and its .meta.json, then send the head message (whose `size` and
 * `meta_json` are filled here, the rest by run()) and the file as chunks.
 */
typedef int (*server_answer_fn)(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err);

static int
server_answer(struct server_conn *c, const char *op, server_answer_fn run, void *ctx, Crossgate__Response *resp,
    uint64_t *size, char **meta_json)
{
	struct server *s = c->s;
	struct store *rst = NULL;
	struct audit *rau = NULL;
	struct cg_err err;
	struct stat sb;
	char path[1200] = "", meta_path[1300], *meta = NULL;
	FILE *f = NULL;
	int r, keep = 0;

	if (server_spool_open(s, op, c->id, path, &f, &err) != 0) {
		server_error(c, "internal", op, "the gateway cannot write the answer; retry later");
		return 0;
	}
	fclose(f);
	f = NULL;
	cg_err_clear(&err);
	if ((r = server_reader_open(s, &rst, &rau, &err)) == 0)
		r = run(rst, rau, path, ctx, &err);
	audit_free(rau);
	store_close(rst);
	if (r != 0) {
		/* refusals by the policy or a budget are audit events already (export.c, query.c, budget.c) */
		server_scrub(err.msg, sizeof(err.msg), path, op);
		server_error(c, r == CG_ERR_POLICY || r == CG_ERR_ARG || r == CG_ERR_LIMIT ? "rejected" : "internal", op,
		    err.msg);
		server_slog(s, "warn", "answer-failed", "op", server_slog_str(op), "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(err.msg), NULL);
		goto out;
	}
	snprintf(meta_path, sizeof(meta_path), "%s.meta.json", path);
	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &sb) != 0 || server_slurp(meta_path, &meta) != 0) {
		server_error(c, "internal", op, "the gateway cannot read the answer; retry later");
		goto out;
	}
	/* unbuffered: the answer is read straight into the chunk buffer, which is wiped, not into stdio's */
	setvbuf(f, NULL, _IONBF, 0);
	*size = (uint64_t)sb.st_size;
	*meta_json = meta;
	if (server_send(c, &resp->base, &err) != 0 ||
	    server_send_chunks(c, f, *size, &err) != 0) {
		server_slog(s, "warn", "answer-send-failed", "op", server_slog_str(op), "conn", json_integer((json_int_t)c->id),
		    "reason", server_slog_str(err.msg), NULL);
		goto out;
	}
	server_slog(s, "info", op, "conn", json_integer((json_int_t)c->id), "principal", server_slog_str(c->pr->name),
	    "bytes", json_integer((json_int_t)*size), NULL);
	keep = 1;
out:
	if (f != NULL)
		fclose(f);
	if (path[0] != '\0') {
		unlink(path);
		snprintf(meta_path, sizeof(meta_path), "%s.meta.json", path);
		unlink(meta_path);
	}
	free(meta);
	*meta_json = NULL;
	return keep;
}

/* ---- export ---- */

struct server_export_ctx {
	struct export_opts o;
	Crossgate__ExportResult *er;
};

static int
server_export_run(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err)
{
	struct server_export_ctx *x = ctx;
	struct export_stats es;
	int r;

	x->o.out_path = path;
	if ((r = export_run(st, a, &x->o, &es, err)) != 0)
		return r;
	/* The synthetic rows drawn (a noisy estimate, or what was asked) and the budget: nothing exact about people. */
	x->er->exported = es.rows;
	x->er->charged_nano = es.charged_nano;
	x->er->remaining_nano = es.remaining_nano;
	return 0;
}

int
server_export(struct server_conn *c, const Crossgate__ExportRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__ExportResult er = CROSSGATE__EXPORT_RESULT__INIT;
	struct server_export_ctx x;
	char msg[CG_ERR_MSG_MAX + 64];
	int keep;

	if (!policy_principal_may_export(s->pol, c->pr, req->purpose)) {
		snprintf(msg, sizeof(msg), "principal '%s' may not export for purpose '%s'", c->pr->name,
		    req->purpose);
		server_error(c, "refused", "export", msg);
		server_refused(c, "export", msg, req->purpose);
		return 0;
	}
	memset(&x, 0, sizeof(x));
	x.o.pol = s->pol;
	x.o.left = req->left[0] ? req->left : NULL;
	x.o.right = req->right[0] ? req->right : NULL;
	x.o.purpose = req->purpose;
	x.o.storage = s->cfg.storage;
	x.o.analyst = c->pr;
	x.o.rows = req->rows;
	x.o.bins = req->bins;
	if (req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &x.o.rho_nano) != 0) {
		server_error(c, "malformed", "export", "export: rho must be a decimal above 0 with at most 9 decimals");
		return 0;
	}
	x.er = &er;
	er.purpose = (char *)req->purpose;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_EXPORT;
	resp.export = &er;
	if ((keep = server_answer(c, "export", server_export_run, &x, &resp, &er.size, &er.meta_json)) != 0) {
		pthread_mutex_lock(&s->mu);
		s->n_exports++;
		pthread_mutex_unlock(&s->mu);
	}
	return keep;
}

/* ---- query ---- */

struct server_query_ctx {
	struct query_spec q;
	struct model_spec m;                 /* a model query (m.kind != 0) instead of q */
	Crossgate__QueryResult *qr;
};

static int
server_query_run(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err)
{
	struct server_query_ctx *x = ctx;
	struct query_stats qs;
	int r;

	if (x->m.kind != 0) {
		struct model_stats ms;

		x->m.out_path = path;
		if ((r = model_run(st, a, &x->m, &ms, err)) != 0)
			return r;
		x->qr->released = ms.released;
		x->qr->charged_nano = ms.charged_nano;
		x->qr->remaining_nano = ms.remaining_nano;
		return 0;
	}
	x->q.out_path = path;
	if ((r = query_run(st, a, &x->q, &qs, err)) != 0)
		return r;
	x->qr->groups = qs.groups;
	x->qr->released = qs.released;
	x->qr->suppressed = qs.suppressed;
	x->qr->charged_nano = qs.charged_nano;
	x->qr->remaining_nano = qs.remaining_nano;
	return 0;
}

/* rpc_request_parse bounds the request's lists by these; the spec's arrays must hold them. */
_Static_assert(RPC_QUERY_GROUP_MAX <= QUERY_GROUP_MAX && RPC_QUERY_METRIC_MAX <= QUERY_METRIC_MAX,
    "a parsed query request must fit a query_spec");

_Static_assert(RPC_QUERY_GROUP_MAX <= MODEL_COLS_MAX, "a parsed model request must fit a model_spec");

/* A model query's spec (gateway/model.h) from the request; rpc.c checked its shape. */
static int
server_model_spec(struct server_conn *c, const Crossgate__QueryRequest *req, struct model_spec *m, struct cg_err *err)
{
	size_t i;

	if (model_kind_parse(req->model, &m->kind, err) != 0)
		return CG_ERR_ARG;
	m->pol = c->s->pol;
	m->purpose = req->purpose;
	m->left = req->left[0] ? req->left : NULL;
	m->right = req->right[0] ? req->right : NULL;
	for (i = 0; i < req->n_model_cols; i++)
		m->cols[m->ncols++] = req->model_cols[i];
	m->y = req->model_y[0] ? req->model_y : NULL;
	m->k = req->model_k;
	m->steps = req->model_steps;
	m->log1p = req->model_log1p;
	m->seed = req->model_seed;
	m->analyst = c->pr;
	m->storage = c->s->cfg.storage;
	if (req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &m->rho_nano) != 0)
		return cg_err_set(err, CG_ERR_ARG, "query: rho must be a decimal above 0 with at most 9 decimals");
	return 0;
}

int
server_query(struct server_conn *c, const Crossgate__QueryRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__QueryResult qr = CROSSGATE__QUERY_RESULT__INIT;
	struct server_query_ctx x;
	struct query_spec *q = &x.q;
	struct cg_err err;
	size_t i;
	int r = 0;

	memset(&x, 0, sizeof(x));
	cg_err_clear(&err);
	q->pol = s->pol;
	q->purpose = req->purpose;
	q->left = req->left[0] ? req->left : NULL;
	q->right = req->right[0] ? req->right : NULL;
	q->buckets = req->buckets;
	q->analyst = c->pr;
	q->storage = s->cfg.storage;
	for (i = 0; i < req->n_group_by; i++)
		q->group_by[q->ngroup++] = req->group_by[i];
	if (req->model[0] != '\0' && (r = server_model_spec(c, req, &x.m, &err)) != 0) {
		server_error(c, "malformed", "query", err.msg);
		return 0;
	}
	for (i = 0; i < req->n_metrics && r == 0; i++)
		r = query_metric_parse(req->metrics[i], &q->metrics[q->nmetrics++], &err);
	if (r == 0 && ((req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &q->rho_nano) != 0) ||
	    (req->epsilon[0] && policy_parse_nano(req->epsilon, strlen(req->epsilon), QUERY_EPSILON_MAX_NANO,
	    &q->epsilon_nano) != 0) || (req->rho[0] && req->epsilon[0])))
		r = cg_err_set(&err, CG_ERR_ARG, "query: rho or epsilon (one of them) must be a decimal above 0 with at "
		    "most 9 decimals");
	if (r != 0) {
		server_error(c, "malformed", "query", err.msg);
		return 0;
	}
	x.qr = &qr;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_QUERY;
	resp.query = &qr;
	return server_answer(c, "query", server_query_run, &x, &resp, &qr.size, &qr.meta_json);
}

/* ---- audit fetch ---- */

struct server_fetch {
	FILE *f;
	uint64_t count, cosigs;
	int failed;
};

/* One Response frame into the spool file. */
static int
server_fetch_frame(struct server_fetch *sf, Crossgate__Response *resp)
{
	unsigned char stackbuf[8192], *b = stackbuf;
	size_t n;
	int r = 0;

	n = crossgate__response__get_packed_size(resp);
	if (n > sizeof(stackbuf) && (b = malloc(n)) == NULL)
		return sf->failed = 1;
	crossgate__response__pack(resp, b);
	if (server_write_frame(sf->f, b, n) != 0)
		r = sf->failed = 1;
	if (b != stackbuf)
		free(b);
	return r;
}

/* Each event becomes a Response{audit_record} frame in the spool file, sent as is afterwards. */
static int
server_fetch_cb(const struct audit_record *rec, void *arg)
{
	struct server_fetch *sf = arg;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditRecord ar = CROSSGATE__AUDIT_RECORD__INIT;

	ar.seq = rec->seq;
	ar.event.data = (uint8_t *)rec->event;
	ar.event.len = rec->len;
	ar.checkpoint = (char *)(rec->checkpoint != NULL ? rec->checkpoint : "");
	if (rec->erased) {
		/* The payload is gone; its leaf hash keeps the tree, and the erasing event accounts for it. */
		ar.erased = 1;
		ar.leaf_hash.data = (uint8_t *)rec->leaf;
		ar.leaf_hash.len = 32;
		ar.erased_by = rec->erased_by;
	}
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_RECORD;
	resp.audit_record = &ar;
	if (server_fetch_frame(sf, &resp) != 0)
		return 1;
	sf->count++;
	return 0;
}

static int
server_fetch_cosig_cb(const struct audit_cosig *c, void *arg)
{
	struct server_fetch *sf = arg;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditCosignature ac = CROSSGATE__AUDIT_COSIGNATURE__INIT;

	ac.size = c->size;
	ac.witness = (char *)c->witness;
	ac.key_id = c->key_id;
	ac.time = c->time;
	ac.line = (char *)c->line;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGNATURE;
	resp.audit_cosignature = &ac;
	if (server_fetch_frame(sf, &resp) != 0)
		return 1;
	sf->cosigs++;
	return 0;
}

_Static_assert(RPC_RULE_MAX == RULE_TEXT_MAX, "a rule the request check lets through fits the parser");

/*
 * An analyst defines an audience (gateway/audience.h), on a connection of its
 * own like a query: the join is a long read.  The answer is the noisy size
 * and the charge; refusals are audit events already (audience.c, budget.c).
 */
int
server_audience_create(struct server_conn *c, const Crossgate__AudienceCreateRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AudienceCreateResult ar = CROSSGATE__AUDIENCE_CREATE_RESULT__INIT;
	struct audience_spec sp;
	struct audience_stats as;
	struct store *rst = NULL;
	struct audit *rau = NULL;
	struct cg_err err;
	char *rec[2];
	size_t i;
	int r;

	cg_err_clear(&err);
	memset(&sp, 0, sizeof(sp));
	sp.pol = s->pol;
	sp.analyst = c->pr;
	sp.name = req->name;
	sp.rule = req->rule[0] ? req->rule : NULL;
	if (req->segment_csv.len > 0) {
		/* rpc.c checked the sizes and the cluster; segment.c checks the content */
		sp.segment = "(request)";
		sp.segment_csv = (const char *)req->segment_csv.data;
		sp.segment_csv_len = req->segment_csv.len;
		sp.segment_meta = (const char *)req->segment_meta.data;
		sp.segment_meta_len = req->segment_meta.len;
		sp.cluster = req->cluster;
	}
	sp.left = req->left[0] ? req->left : NULL;
	sp.right = req->right[0] ? req->right : NULL;
	sp.storage = s->cfg.storage;
	if (req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &sp.rho_nano) != 0) {
		server_error(c, "malformed", "audience_create", "audience: rho must be a decimal above 0 with at most 9 "
		    "decimals");
		return 0;
	}
	if ((r = server_reader_open(s, &rst, &rau, &err)) == 0)
		r = audience_create(rst, rau, &sp, &as, &err);
	audit_free(rau);
	store_close(rst);
	if (r != 0) {
		server_error(c, r == CG_ERR_POLICY || r == CG_ERR_ARG || r == CG_ERR_FORMAT || r == CG_ERR_LIMIT ?
		    "rejected" : "internal", "audience_create", err.msg);
		server_slog(s, "warn", "audience-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(err.msg), NULL);
		return 0;
	}
	ar.name = (char *)req->name;
	ar.id = as.audience_id;
	ar.rule_sha256 = as.rule_hash;
	ar.cluster = as.cluster;
	ar.noisy_size = as.noisy_size;
	ar.charged_nano = as.charged_nano;
	ar.remaining_nano = as.remaining_nano;
	for (i = 0; i < as.nrecipients; i++)
		rec[i] = as.recipients[i];
	ar.recipients = rec;
	ar.n_recipients = as.nrecipients;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIENCE_CREATE;
	resp.audience_create = &ar;
	if (server_send(c, &resp.base, &err) != 0)
		return 0;
	server_slog(s, "info", "audience", "conn", json_integer((json_int_t)c->id), "principal",
	    server_slog_str(c->pr->name), NULL);
	return 1;
}

/*
 * A partner pulls its audience deliveries (gateway/audience.h): only those of
 * the partner its certificate's principal names, each sealed to that
 * partner's signing key; taking them and their audit events commit before
 * anything is sent (a delivery lost in transit is fetched again with `all`).
 */
int
server_audience_fetch(struct server_conn *c, const Crossgate__AudienceFetchRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AudienceFetchResult ar = CROSSGATE__AUDIENCE_FETCH_RESULT__INIT;
	Crossgate__AudienceDelivery ad = CROSSGATE__AUDIENCE_DELIVERY__INIT;
	struct audience_delivery *d = NULL;
	struct cg_err err;
	size_t n = 0, i;
	int r, keep = 0;

	cg_err_clear(&err);
	pthread_mutex_lock(&s->db_mu);
	r = audience_fetch(s->st, s->au, s->pol, c->pr->partner, req->all, &d, &n, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		server_error(c, "internal", "audience_fetch", "the gateway cannot read the deliveries; retry later");
		server_slog(s, "error", "audience-fetch-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(err.msg), NULL);
		return 0;
	}
	ar.partner = c->pr->partner;
	ar.deliveries = (uint32_t)n;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIENCE_FETCH;
	resp.audience_fetch = &ar;
	if (server_send(c, &resp.base, &err) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		FILE *f;

		ad.id = d[i].id;
		ad.audience = d[i].audience;
		ad.created = d[i].created;
		ad.size = d[i].len;
		resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIENCE_DELIVERY;
		resp.audience_delivery = &ad;
		if (server_send(c, &resp.base, &err) != 0)
			goto out;
		if ((f = fmemopen(d[i].sealed, d[i].len, "rb")) == NULL)
			goto out;
		r = server_send_chunks(c, f, d[i].len, &err);
		fclose(f);
		if (r != 0)
			goto out;
	}
	server_slog(s, "info", "audience-fetch", "conn", json_integer((json_int_t)c->id), "principal",
	    server_slog_str(c->pr->name), NULL);
	keep = 1;
out:
	audience_deliveries_free(d, n);
	return keep;
}

/* A partner's own view: counts of its stored records per purpose. */
int
server_stats(struct server_conn *c)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__StatsResult sr = CROSSGATE__STATS_RESULT__INIT;
	Crossgate__PurposeCount pc[POLICY_PURPOSES_MAX], *pcp[POLICY_PURPOSES_MAX];
	Crossgate__AuditEvent ev;
	struct stats_partner sp;
	struct cg_err err;
	size_t i;
	int r;

	cg_err_clear(&err);
	server_event_init(s, &ev, c->pr->name, "stats", "ok");
	ev.partner_id = c->pr->partner;
	pthread_mutex_lock(&s->db_mu);
	r = stats_partner_get(s->st, s->pol, c->pr->partner, &sp, &err);
	if (r == 0)
		r = audit_log(s->au, &ev, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		server_error(c, "internal", "stats", "the gateway cannot count the records; retry later");
		server_slog(s, "error", "stats-failed", "conn", json_integer((json_int_t)c->id), "reason", server_slog_str(err.msg),
		    NULL);
		return 0;
	}
	sr.partner = c->pr->partner;
	sr.records = sp.records;
	sr.batches = sp.batches;
	for (i = 0; i < s->pol->npurposes; i++) {
		crossgate__purpose_count__init(&pc[i]);
		pc[i].purpose = s->pol->purposes[i];
		pc[i].consenting = sp.with_purpose[i];
		pcp[i] = &pc[i];
	}
	sr.purposes = pcp;
	sr.n_purposes = s->pol->npurposes;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_STATS;
	resp.stats = &sr;
	if (server_send(c, &resp.base, &err) != 0)
		return 0;
	server_slog(s, "info", "stats", "conn", json_integer((json_int_t)c->id), "principal", server_slog_str(c->pr->name), NULL);
	return 1;
}

int
server_fetch(struct server_conn *c, const Crossgate__AuditFetchRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditFetchResult fr = CROSSGATE__AUDIT_FETCH_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	struct server_fetch sf;
	struct cg_err err;
	struct stat sb;
	char path[1200] = "";
	uint64_t size = 0;
	int r, keep = 0;

	memset(&sf, 0, sizeof(sf));
	if ((r = server_spool_open(s, "audit", c->id, path, &sf.f, &err)) != 0) {
		server_error(c, "internal", "audit_fetch", "the gateway cannot copy the audit log; retry later");
		return 0;
	}
	setvbuf(sf.f, NULL, _IOFBF, 1 << 20);
	server_event_init(s, &ev, c->pr->name, "audit-fetch", "ok");
	crossgate__audit_event__counts_entry__init(&ce);
	ce.key = (char *)"from";
	ce.value = req->from;
	ev.counts = &cep;
	ev.n_counts = 1;
	cg_err_clear(&err);
	/* Copied under the lock into the spool file; sent after it is released (a slow auditor stalls nobody). */
	pthread_mutex_lock(&s->db_mu);
	r = audit_log(s->au, &ev, &err);
	if (r == 0)
		r = audit_iter(s->st, req->from, server_fetch_cb, &sf, &err);
	if (r == 0 && req->cosignatures)
		r = audit_cosig_iter(s->st, req->from, server_fetch_cosig_cb, &sf, &err);
	size = audit_size(s->au);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0 || sf.failed || fflush(sf.f) != 0 || fstat(fileno(sf.f), &sb) != 0 || fseek(sf.f, 0, SEEK_SET) != 0) {
		server_error(c, "internal", "audit_fetch", "the gateway cannot copy the audit log; retry later");
		server_slog(s, "error", "audit-fetch-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(r != 0 ? err.msg : "spool write failed"), NULL);
		goto out;
	}
	fr.count = sf.count;
	fr.size = size;
	fr.cosignatures = sf.cosigs;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_FETCH;
	resp.audit_fetch = &fr;
	if (server_send(c, &resp.base, &err) != 0)
		goto sendfail;
	{
		unsigned char *b = malloc(RPC_CHUNK_MAX);
		size_t n;

		if (b == NULL)
			goto out;
		r = 0;
		while (r == 0 && (n = fread(b, 1, RPC_CHUNK_MAX, sf.f)) > 0)
			r = tls_write(c->tc, b, n, server_deadline(s->pol->net.read_timeout), &err);
		free(b);
		if (r != 0)
			goto sendfail;
	}
	pthread_mutex_lock(&s->mu);
	s->n_fetches++;
	pthread_mutex_unlock(&s->mu);
	server_slog(s, "info", "audit-fetch", "conn", json_integer((json_int_t)c->id), "principal", server_slog_str(c->pr->name),
	    "from", json_integer((json_int_t)req->from), "events", json_integer((json_int_t)sf.count), "bytes",
	    json_integer((json_int_t)sb.st_size), NULL);
	keep = 1;
	goto out;
sendfail:
	server_slog(s, "warn", "audit-fetch-send-failed", "conn", json_integer((json_int_t)c->id), "reason",
	    server_slog_str(err.msg), NULL);
out:
	if (sf.f != NULL)
		fclose(sf.f);
	if (path[0] != '\0')
		unlink(path);
	return keep;
}

/* ---- a consistency proof ---- */

_Static_assert(RPC_PROOF_MAX == CONSISTENCY_FILE_MAX, "a proof file fits the response check");

/* An auditor that kept an old checkpoint asks for the proof that the log extends it (consistency.h). */
int
server_consistency(struct server_conn *c, const Crossgate__AuditConsistencyRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditConsistencyResult cr = CROSSGATE__AUDIT_CONSISTENCY_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[2], *cep[2] = { &ce[0], &ce[1] };
	struct cg_err err;
	unsigned char *proof = NULL;
	size_t len = 0;
	int r, keep = 0;

	cg_err_clear(&err);
	server_event_init(s, &ev, c->pr->name, "audit-consistency", "ok");
	crossgate__audit_event__counts_entry__init(&ce[0]);
	crossgate__audit_event__counts_entry__init(&ce[1]);
	ce[0].key = (char *)"old_size";
	ce[0].value = req->old_size;
	ce[1].key = (char *)"new_size";
	ce[1].value = req->new_size;
	ev.counts = cep;
	ev.n_counts = 2;
	pthread_mutex_lock(&s->db_mu);
	r = audit_log(s->au, &ev, &err);
	if (r == 0)
		r = consistency_prove(s->st, req->old_size, req->new_size, &proof, &len, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r == CG_ERR_NOTFOUND || r == CG_ERR_ARG) {
		/* Sizes the log has no checkpoint of: the auditor's mistake, said as such. */
		server_error(c, "rejected", "audit_consistency", err.msg);
		goto out;
	}
	if (r != 0) {
		server_error(c, "internal", "audit_consistency", "the gateway cannot make the proof; retry later");
		server_slog(s, "error", "audit-consistency-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    json_string(err.msg), NULL);
		goto out;
	}
	cr.proof.data = proof;
	cr.proof.len = len;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_CONSISTENCY;
	resp.audit_consistency = &cr;
	if (server_send(c, &resp.base, &err) != 0)
		goto out;
	server_slog(s, "info", "audit-consistency", "conn", json_integer((json_int_t)c->id), "principal",
	    json_string(c->pr->name), "old_size", json_integer((json_int_t)req->old_size), NULL);
	keep = 1;
out:
	free(proof);
	return keep;
}

/* ---- a witness's cosignature ---- */

int
server_cosign(struct server_conn *c, const Crossgate__AuditCosignRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditCosignResult cr = CROSSGATE__AUDIT_COSIGN_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	char name[NOTE_NAME_MAX + 1], msg[CG_ERR_MSG_MAX + 64];
	unsigned char pub[32];
	struct cg_err err;
	int r;

	cg_err_clear(&err);
	if (note_parse_cosig_key(req->witness_key, name, pub, &err) != 0) {
		snprintf(msg, sizeof(msg), "witness key: %s", err.msg);
		server_error(c, "malformed", "audit_cosign", msg);
		server_refused(c, "audit_cosign", msg, NULL);
		return 0;
	}
	server_event_init(s, &ev, c->pr->name, "audit-cosign", "ok");
	ev.reason = name;
	crossgate__audit_event__counts_entry__init(&ce);
	ce.key = (char *)"size";
	ce.value = req->size;
	ev.counts = &cep;
	ev.n_counts = 1;
	/* Checked against the stored checkpoint, stored, and the submission logged: one transaction. */
	pthread_mutex_lock(&s->db_mu);
	if ((r = store_begin(s->st, &err)) == 0) {
		if ((r = audit_cosignature_add(s->st, req->size, name, pub, req->line, &err)) != 0 ||
		    (r = audit_append(s->au, &ev, &err)) != 0 || (r = store_commit(s->st, &err)) != 0) {
			store_rollback(s->st);
			audit_txn_end(s->au, 0);
		} else
			audit_txn_end(s->au, 1);
	}
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		int theirs = r == CG_ERR_VERIFY || r == CG_ERR_NOTFOUND || r == CG_ERR_FORMAT;

		server_error(c, theirs ? "rejected" : "internal", "audit_cosign", err.msg);
		if (theirs)
			server_refused(c, "audit_cosign", err.msg, NULL);
		else
			server_slog(s, "error", "cosign-failed", "conn", json_integer((json_int_t)c->id), "reason",
			    server_slog_str(err.msg), NULL);
		return 0;
	}
	cr.size = req->size;
	cr.witness = name;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGN;
	resp.audit_cosign = &cr;
	if (server_send(c, &resp.base, &err) != 0)
		return 0;
	server_slog(s, "info", "audit-cosign", "conn", json_integer((json_int_t)c->id), "principal", server_slog_str(c->pr->name),
	    "size", json_integer((json_int_t)req->size), NULL);
	return 1;
}


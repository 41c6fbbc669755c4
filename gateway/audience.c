/* audience.c - see audience.h */
#include "gateway/audience.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "crypto/delivery.h"
#include "crypto/noise.h"
#include "crypto/seal.h"
#include "gateway/budget.h"
#include "gateway/experiment.h"
#include "gateway/join.h"
#include "gateway/query.h"
#include "gateway/rule.h"
#include "gateway/segment.h"

#define AUDIENCE_GROW 4096
static const char audience_refusal_label[] = "crossgate audience refusal v1";

static int
audience_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: audiences: %s: %s", store_path(st), what, sqlite3_errmsg(store_db(st)));
}

int
audience_schema(struct store *st, struct cg_err *err)
{
	static const char sql[] =
	    "CREATE TABLE IF NOT EXISTS audiences("
	    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, analyst TEXT NOT NULL, rule TEXT NOT NULL,"
	    "  rule_hash TEXT NOT NULL, left_partner TEXT NOT NULL, right_partner TEXT NOT NULL,"
	    "  noisy_size INTEGER NOT NULL, created INTEGER NOT NULL) STRICT;"
	    /* subject: the member's index in the audience, the same for its two partners' rows */
	    "CREATE TABLE IF NOT EXISTS audience_members(audience TEXT NOT NULL, subject INTEGER NOT NULL,"
	    "  partner TEXT NOT NULL, kind INTEGER NOT NULL, token BLOB NOT NULL) STRICT;"
	    "CREATE INDEX IF NOT EXISTS audience_members_of ON audience_members(audience, subject);"
	    /* an experiment subject's member row, for its delivery (experiment_subjects holds no subject) */
	    "CREATE INDEX IF NOT EXISTS audience_members_token ON audience_members(audience, partner, token);"
	    /* audience: the delivery's name (an audience's, or an experiment's: experiment = 1, its treatment arm);
	     * the tokens are read and sealed when the partner fetches, so an erasure before then takes effect */
	    "CREATE TABLE IF NOT EXISTS audience_deliveries("
	    "  id TEXT PRIMARY KEY, audience TEXT NOT NULL, partner TEXT NOT NULL, created INTEGER NOT NULL,"
	    "  audience_id TEXT NOT NULL, experiment INTEGER NOT NULL, fetched INTEGER NOT NULL DEFAULT 0) STRICT;"
	    "CREATE INDEX IF NOT EXISTS audience_deliveries_for ON audience_deliveries(partner, fetched);"
	    /* append-only: a refusal cannot be taken back to get more tries */
	    "CREATE TABLE IF NOT EXISTS audience_refusals(id INTEGER PRIMARY KEY, analyst TEXT NOT NULL,"
	    "  at INTEGER NOT NULL) STRICT;"
	    "CREATE TRIGGER IF NOT EXISTS audience_refusals_no_update BEFORE UPDATE ON audience_refusals "
	    "  BEGIN SELECT RAISE(ABORT, 'audience_refusals is append-only'); END;"
	    "CREATE TRIGGER IF NOT EXISTS audience_refusals_no_delete BEFORE DELETE ON audience_refusals "
	    "  BEGIN SELECT RAISE(ABORT, 'audience_refusals is append-only'); END;";

	if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
		return audience_dberr(st, "create", err);
	return 0;
}

/* One integer from a query with one text parameter. */
static int
audience_count(struct store *st, const char *sql, const char *arg, int64_t *out, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	*out = 0;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		r = audience_dberr(st, "read", err);
	sqlite3_finalize(s);
	return r;
}

/* HMAC-SHA-256 under `key` of the label and the member-set digest: the refusal test's randomness. */
static void
audience_refusal_hmac(const unsigned char key[32], const unsigned char digest[32], unsigned char h[32])
{
	crypto_auth_hmacsha256_state hs;

	crypto_auth_hmacsha256_init(&hs, key, 32);
	crypto_auth_hmacsha256_update(&hs, (const unsigned char *)audience_refusal_label, sizeof(audience_refusal_label));
	crypto_auth_hmacsha256_update(&hs, digest, 32);
	crypto_auth_hmacsha256_final(&hs, h);
	sodium_memzero(&hs, sizeof(hs));
}

int
audience_refusal_mac(const struct keyfile_key *storage, const unsigned char digest[32], unsigned char h[32],
    struct cg_err *err)
{
	unsigned char key[32];

	if (storage->agent != NULL)   /* privilege separation: the monitor holds the storage key */
		return storage->agent->refusal_mac(storage->agent->ctx, digest, h, err);
	if (storage->key_len < SEAL_KEY_LEN)
		return cg_err_set(err, CG_ERR_ARG, "the storage key is too short");
	seal_subkey(storage->key, (const unsigned char *)audience_refusal_label, sizeof(audience_refusal_label) - 1,
	    key);
	audience_refusal_hmac(key, digest, h);
	sodium_memzero(key, sizeof(key));
	return 0;
}

/*
 * Discrete Laplace as the difference of two geometric variables,
 * floor(-t ln U) with U uniform in (0, 1] from 53 bits each.  Floating
 * point is used here only to decide one bit (refused or not), never to
 * print a value, so its rounding cannot leak a count (Mironov 2012).
 */
static int64_t
audience_noise_of(const unsigned char h[32], uint32_t t)
{
	double u[2], g[2];
	uint64_t x;
	int i, b;

	for (i = 0; i < 2; i++) {
		x = 0;
		for (b = 0; b < 8; b++)
			x = x << 8 | h[i * 8 + b];
		u[i] = ((double)(x >> 11) + 1.0) / 9007199254740992.0;
		g[i] = floor(-(double)t * log(u[i]));
	}
	return (int64_t)g[0] - (int64_t)g[1];
}

int64_t
audience_refusal_noise(const unsigned char key[32], const unsigned char digest[32], uint32_t t)
{
	unsigned char h[crypto_auth_hmacsha256_BYTES];
	int64_t z;

	audience_refusal_hmac(key, digest, h);
	z = audience_noise_of(h, t);
	sodium_memzero(h, sizeof(h));
	return z;
}

/* The members, as join_each hands them over: each side's key token, and a digest of the set. */
struct audience_walk {
	struct rule *rule;                   /* the rule, or */
	struct segment *seg;                 /* the segment */
	struct token *tok[2];
	size_t n, cap;
	crypto_generichash_state digest;
};

static void
audience_key_token(const struct store_ref *ref, struct token *t)
{
	/* join.h: a user is keyed by its email token, or without an email by its phone token */
	t->kind = ref->has_email ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
	memcpy(t->value, ref->has_email ? ref->email : ref->phone, TOKEN_LEN);
}

static int
audience_collect(void *ctx, const struct store_ref *const ref[2], Crossgate__RecordPayload *const pl[2],
    struct cg_err *err)
{
	struct audience_walk *w = ctx;
	int s;

	if (w->rule != NULL ? !rule_eval(w->rule, pl) : !segment_eval(w->seg, pl))
		return 0;
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : AUDIENCE_GROW;

		for (s = 0; s < 2; s++) {
			struct token *p = realloc(w->tok[s], ncap * sizeof(*p));
			if (p == NULL)
				return cg_err_set(err, CG_ERR_NOMEM, "out of memory collecting an audience");
			w->tok[s] = p;
		}
		w->cap = ncap;
	}
	for (s = 0; s < 2; s++) {
		audience_key_token(ref[s], &w->tok[s][w->n]);
		crypto_generichash_update(&w->digest, (const unsigned char *)&w->tok[s][w->n].kind, 1);
		crypto_generichash_update(&w->digest, w->tok[s][w->n].value, TOKEN_LEN);
	}
	w->n++;
	return 0;
}

/* The "audience" audit event (in the caller's transaction when in_txn). */
static int
audience_log(struct audit *a, const struct audience_spec *sp, const char *outcome, const char *reason,
    const unsigned char id[16], struct audience_stats *stats, int in_txn, struct cg_err *err)
{
	static const char *const names[3] = { "noisy_size", "rho_nano", "recipients" };
	uint64_t vals[3] = { stats->noisy_size > 0 ? (uint64_t)stats->noisy_size : 0, (uint64_t)stats->charged_nano,
	    stats->nrecipients };
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[3], *cep[3];
	size_t i;
	int r;

	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(sp->analyst != NULL ? sp->analyst->name : "analyst");
	ev.action = (char *)"audience";
	ev.outcome = (char *)outcome;
	ev.reason = (char *)reason;
	ev.purpose = (char *)AUDIENCE_PURPOSE;
	ev.policy_hash.data = (uint8_t *)sp->pol->hash;
	ev.policy_hash.len = sizeof(sp->pol->hash);
	ev.batch_id.data = (uint8_t *)id;
	ev.batch_id.len = 16;
	for (i = 0; i < 3; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		ce[i].key = (char *)names[i];
		ce[i].value = vals[i];
		cep[i] = &ce[i];
	}
	ev.counts = cep;
	ev.n_counts = 3;
	r = in_txn ? audit_append(a, &ev, err) : audit_log(a, &ev, err);
	if (r == 0)
		stats->audit_index = ev.seq;
	return r;
}

/* Refuse before anything is read or charged: an audit event, then the analyst's message. */
static int
audience_refuse(struct audit *a, const struct audience_spec *sp, const unsigned char id[16],
    struct audience_stats *stats, const char *reason, int code, struct cg_err *err)
{
	struct cg_err why = *err;
	char text[512];
	int r;

	snprintf(text, sizeof(text), "%s", reason);
	if ((r = audience_log(a, sp, "refused", text, id, stats, 0, err)) != 0)
		return r;
	*err = why;
	return code;
}

static int
audience_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > AUDIENCE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* Record a refusal of the size test, with its audit event, in one transaction. */
static int
audience_refusal_record(struct store *st, struct audit *a, const struct audience_spec *sp, const unsigned char id[16],
    struct audience_stats *stats, const char *reason, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_begin(st, err)) != 0)
		return r;
	if (sqlite3_prepare_v2(store_db(st), "INSERT INTO audience_refusals(analyst, at) VALUES (?1, strftime('%s','now'))",
	    -1, &s, NULL) != SQLITE_OK) {
		r = audience_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, sp->analyst->name, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = audience_dberr(st, "record a refusal", err);
		goto out;
	}
	if ((r = audience_log(a, sp, "refused", reason, id, stats, 1, err)) != 0 || (r = store_commit(st, err)) != 0)
		goto out;
	audit_txn_end(a, 1);
	sqlite3_finalize(s);
	return 0;
out:
	sqlite3_finalize(s);
	store_rollback(st);
	audit_txn_end(a, 0);
	return r;
}

int
audience_delivery_add(struct store *st, struct audit *a, const struct policy *pol, const char *name,
    const unsigned char id[16], const struct policy_partner *pp, int experiment, int64_t created, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	unsigned char did[16];
	sqlite3_stmt *s = NULL;
	char did_hex[33], id_hex[33];
	int r;

	sodium_bin2hex(id_hex, sizeof(id_hex), id, 16);
	randombytes_buf(did, sizeof(did));
	sodium_bin2hex(did_hex, sizeof(did_hex), did, sizeof(did));
	if (sqlite3_prepare_v2(store_db(st), "INSERT INTO audience_deliveries(id, audience, partner, created, "
	    "audience_id, experiment) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL) != SQLITE_OK) {
		r = audience_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, did_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, pp->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, created);
	sqlite3_bind_text(s, 5, id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, experiment ? 1 : 0);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = audience_dberr(st, "store the delivery", err);
		goto out;
	}
	/* the event names the audience and the recipient; how many users it holds is an exact count: not logged */
	crossgate__audit_event__init(&ev);
	ev.actor = (char *)"gateway";
	ev.action = (char *)"audience-deliver";
	ev.outcome = (char *)"ok";
	ev.reason = (char *)id_hex;
	ev.partner_id = pp->id;
	ev.purpose = (char *)AUDIENCE_PURPOSE;
	ev.batch_id.data = did;
	ev.batch_id.len = sizeof(did);
	ev.policy_hash.data = (uint8_t *)pol->hash;
	ev.policy_hash.len = sizeof(pol->hash);
	r = audit_append(a, &ev, err);
out:
	sqlite3_finalize(s);
	return r;
}

/* Both partners' key tokens of every member, by subject index (in the caller's transaction). */
static int
audience_members_store(struct store *st, const char *name, const struct policy_partner *const side[2],
    struct token *const tok[2], size_t n, struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	size_t i;
	int s, r = 0;

	if (sqlite3_prepare_v2(store_db(st), "INSERT INTO audience_members(audience, subject, partner, kind, token) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", -1, &q, NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	for (i = 0; i < n && r == 0; i++)
		for (s = 0; s < 2 && r == 0; s++) {
			sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 2, (int64_t)i);
			sqlite3_bind_text(q, 3, side[s]->id, -1, SQLITE_STATIC);
			sqlite3_bind_int(q, 4, (int)tok[s][i].kind);
			sqlite3_bind_blob(q, 5, tok[s][i].value, TOKEN_LEN, SQLITE_STATIC);
			if (sqlite3_step(q) != SQLITE_DONE)
				r = audience_dberr(st, "store the members", err);
			sqlite3_reset(q);
		}
	sqlite3_finalize(q);
	return r;
}

int
audience_create(struct store *st, struct audit *a, const struct audience_spec *sp, struct audience_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = sp->pol;
	const struct policy_partner *side[2];
	struct audience_walk w;
	struct join pre, j;
	struct join_col *cols = NULL;
	struct rule *rule = NULL;
	struct segment *seg = NULL;
	unsigned char id[16], digest[32], key[32];
	char dataset[80], reason[256], what[128], canon[RULE_TEXT_MAX * 2];
	size_t ncols = 0, nqi = 0, i;
	uint64_t no_consent = 0;
	int64_t refusals = 0, exists = 0, rho, test_rho, z, noise;
	uint64_t num, den;
	int pbit, r, s, in_txn = 0;
	time_t now = time(NULL);

	memset(stats, 0, sizeof(*stats));
	memset(&w, 0, sizeof(w));
	memset(&j, 0, sizeof(j));
	memset(&pre, 0, sizeof(pre));
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(stats->audience_id, sizeof(stats->audience_id), id, sizeof(id));
	if ((r = audience_schema(st, err)) != 0 || (r = budget_schema(st, err)) != 0)
		return r;
	if (!audience_name_ok(sp->name))
		return cg_err_set(err, CG_ERR_ARG, "an audience name is 1 to %d of a-z, 0-9, '_', '-'", AUDIENCE_NAME_MAX);

	/* 1. The policy alone decides these: a refusal here says nothing about the data. */
	if ((pbit = policy_purpose_bit(pol, AUDIENCE_PURPOSE)) < 0) {
		cg_err_set(err, CG_ERR_POLICY, "the policy has no purpose '%s': no audiences", AUDIENCE_PURPOSE);
		return audience_refuse(a, sp, id, stats, "no marketing purpose in the policy", CG_ERR_POLICY, err);
	}
	if (sp->analyst == NULL || !policy_principal_may_export(pol, sp->analyst, AUDIENCE_PURPOSE)) {
		cg_err_set(err, CG_ERR_POLICY, "analyst '%s' is not granted the purpose '%s' (the principal's purposes)",
		    sp->analyst != NULL ? sp->analyst->name : "?", AUDIENCE_PURPOSE);
		return audience_refuse(a, sp, id, stats, "analyst not granted marketing", CG_ERR_POLICY, err);
	}
	if (pol->marketing.receivers == 0) {
		cg_err_set(err, CG_ERR_POLICY, "the policy names no partner that may receive audiences (add a "
		    "'marketing: {receivers: [ID, ...]}' section): audience refused");
		return audience_refuse(a, sp, id, stats, "no receivers in the policy (marketing: receivers)", CG_ERR_POLICY,
		    err);
	}
	if (pol->npartners < 2 && (sp->left == NULL || sp->right == NULL))
		return cg_err_set(err, CG_ERR_POLICY, "the policy has fewer than two partners: nothing to join");
	side[0] = pre.side[0] = policy_partner_find(pol, sp->left ? sp->left : pol->partners[0].id);
	side[1] = pre.side[1] = policy_partner_find(pol, sp->right ? sp->right : pol->partners[1].id);
	if (side[0] == NULL || side[1] == NULL || side[0] == side[1])
		return cg_err_set(err, CG_ERR_ARG, "the join needs two different partners of the policy");
	for (s = 0; s < 2; s++)
		if (!policy_partner_may_source(pol, side[s]->id)) {
			cg_err_set(err, CG_ERR_POLICY, "partner '%s' may not serve as an audience's source (the policy's "
			    "marketing: sources): audience refused", side[s]->id);
			return audience_refuse(a, sp, id, stats, "a partner is not a source (marketing: sources)",
			    CG_ERR_POLICY, err);
		}
	join_dataset(&pre, dataset, sizeof(dataset));
	if ((r = audience_count(st, "SELECT count(*) FROM audiences WHERE name = ?1", sp->name, &exists, err)) != 0)
		return r;
	if (exists)
		return cg_err_set(err, CG_ERR_ARG, "an audience named '%s' exists already", sp->name);
	if ((r = audience_count(st, "SELECT count(*) FROM audience_refusals WHERE analyst = ?1", sp->analyst->name,
	    &refusals, err)) != 0)
		return r;
	if (refusals >= pol->marketing.max_refusals) {
		cg_err_set(err, CG_ERR_POLICY, "analyst '%s' has had all %u audience refusals the policy allows "
		    "(marketing: max_refusals): no more audiences", sp->analyst->name, pol->marketing.max_refusals);
		return audience_refuse(a, sp, id, stats, "refusal cap reached (marketing: max_refusals)", CG_ERR_POLICY,
		    err);
	}
	stats->refusals_left = pol->marketing.max_refusals - (uint32_t)refusals;
	if ((sp->rule == NULL) == (sp->segment == NULL))
		return cg_err_set(err, CG_ERR_ARG, "an audience is defined by a rule or by a segment (--rule or --segment "
		    "with --cluster), one of them");
	if (sp->rule != NULL && (r = rule_parse(sp->rule, strlen(sp->rule), &rule, err)) != 0)
		return r;
	if (sp->segment != NULL && (r = sp->segment_csv != NULL ? segment_load_mem(sp->segment, sp->segment_csv,
	    sp->segment_csv_len, sp->segment_meta != NULL ? sp->segment_meta : "", sp->segment_meta_len, sp->cluster, &seg,
	    err) : segment_load(sp->segment, sp->cluster, &seg, err)) != 0)
		return r;
	if ((cols = calloc(JOIN_COLS_MAX, sizeof(*cols))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	join_columns(&pre, pbit, cols, &ncols, &nqi);
	if (rule != NULL) {
		if ((r = rule_bind(rule, cols, ncols, err)) != 0)
			goto out;
		rule_hash_hex(rule, stats->rule_hash);
		rule_canon(rule, canon, sizeof(canon));
		snprintf(what, sizeof(what), "rule sha256 %s", stats->rule_hash);
	} else {
		if ((r = segment_bind(seg, cols, ncols, err)) != 0)
			goto out;
		segment_hash_hex(seg, stats->rule_hash);
		segment_canon(seg, canon, sizeof(canon));
		snprintf(what, sizeof(what), "segment sha256 %s cluster %u", stats->rule_hash, sp->cluster);
		stats->cluster = sp->cluster;
	}
	rho = sp->rho_nano > 0 ? sp->rho_nano : pol->marketing.audience_rho_nano > 0 ? pol->marketing.audience_rho_nano :
	    pol->privacy.query_rho_nano;
	test_rho = budget_rho_of_epsilon((BUDGET_NANO + pol->marketing.refusal_noise - 1) / pol->marketing.refusal_noise);

	/*
	 * The budget, before the data is read.  Once it cannot pay for the audience, the size test below
	 * would still answer a question about the data for nothing: "smaller than the minimum" and
	 * "exhausted" differ, and an analyst could ask it of member set after member set.  The charge
	 * (step 3) checks again, atomically.
	 */
	r = budget_fits(st, sp->analyst->name, dataset, rho + test_rho, policy_principal_budget(pol, sp->analyst), err);
	if (r == CG_ERR_POLICY) {
		r = audience_refuse(a, sp, id, stats, "privacy budget exhausted (checked before the size test)",
		    CG_ERR_POLICY, err);
		goto out;
	} else if (r != 0) {
		goto out;
	}

	/* 2. The members, and the refusal test on their noisy count. */
	if ((r = join_run(st, pol, side[0]->id, side[1]->id, &j, err)) != 0)
		goto out;
	w.rule = rule;
	w.seg = seg;
	crypto_generichash_init(&w.digest, NULL, 0, sizeof(digest));
	if ((r = join_each(st, sp->storage, &j, pbit, JOIN_BOTH, audience_collect, &w, &no_consent, err)) != 0)
		goto out;
	crypto_generichash_final(&w.digest, digest, sizeof(digest));
	if ((r = audience_refusal_mac(sp->storage, digest, key, err)) != 0)
		goto out;
	z = audience_noise_of(key, pol->marketing.refusal_noise);
	sodium_memzero(key, sizeof(key));
	if ((int64_t)w.n + z < (int64_t)pol->marketing.min_audience) {
		snprintf(reason, sizeof(reason), "%s; smaller than min_audience %u by a noisy test", what,
		    pol->marketing.min_audience);
		if ((r = audience_refusal_record(st, a, sp, id, stats, reason, err)) != 0)
			goto out;
		stats->refusals_left--;
		r = cg_err_set(err, CG_ERR_POLICY, "audience '%s' refused: it is smaller than the policy's minimum of %u "
		    "(decided on a noisy count; nothing was charged; %u refusals left)", sp->name,
		    pol->marketing.min_audience, stats->refusals_left);
		goto out;
	}

	/* 3. The charge, before any noise is drawn or anything stored; no refunds. */
	r = budget_charge(st, a, sp->analyst->name, dataset, rho + test_rho, policy_principal_budget(pol, sp->analyst),
	    AUDIENCE_PURPOSE, &stats->remaining_nano, err);
	if (r != 0)
		goto out;
	stats->charged_nano = rho + test_rho;

	/* 4. The noisy size: Gaussian variance sens^2 / (2 rho) = 1e9 / (2 rho_nano). */
	if ((r = query_noise_param((unsigned __int128)join_sensitivity(1) * join_sensitivity(1) * BUDGET_NANO,
	    (unsigned __int128)2 * (uint64_t)rho, &num, &den)) != 0) {
		r = cg_err_set(err, CG_ERR_LIMIT, "the noise for rho %.9f would be too large", (double)rho / BUDGET_NANO);
		goto out;
	}
	if ((r = noise_gaussian(num, den, &noise)) != 0) {
		r = cg_err_set(err, CG_ERR_INTERNAL, "noise sampling failed");
		goto out;
	}
	stats->noisy_size = (int64_t)w.n + noise;

	/* 5 and 6. The audience, its members and deliveries, and the events, in one transaction. */
	if ((r = store_begin(st, err)) != 0)
		goto out;
	in_txn = 1;
	{
		sqlite3_stmt *q = NULL;

		if (sqlite3_prepare_v2(store_db(st), "INSERT INTO audiences(id, name, analyst, rule, rule_hash, "
		    "left_partner, right_partner, noisy_size, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", -1, &q,
		    NULL) != SQLITE_OK) {
			r = audience_dberr(st, "prepare", err);
			goto out;
		}
		sqlite3_bind_text(q, 1, stats->audience_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, sp->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, sp->analyst->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, canon, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 5, stats->rule_hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, side[0]->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 7, side[1]->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 8, stats->noisy_size);
		sqlite3_bind_int64(q, 9, (int64_t)now);
		if (sqlite3_step(q) != SQLITE_DONE)
			r = audience_dberr(st, "store the audience", err);
		sqlite3_finalize(q);
		if (r != 0)
			goto out;
	}
	if ((r = audience_members_store(st, sp->name, side, w.tok, w.n, err)) != 0)
		goto out;
	for (s = 0; s < 2; s++) {
		if (!policy_partner_may_receive(pol, side[s]->id))
			continue;
		if ((r = audience_delivery_add(st, a, pol, sp->name, id, side[s], 0, (int64_t)now, err)) != 0)
			goto out;
		snprintf(stats->recipients[stats->nrecipients++], sizeof(stats->recipients[0]), "%s", side[s]->id);
	}
	snprintf(reason, sizeof(reason), "%s; recipients", what);
	for (i = 0; i < stats->nrecipients; i++) {
		size_t l = strlen(reason);
		snprintf(reason + l, sizeof(reason) - l, "%s%s", i ? "," : " ", stats->recipients[i]);
	}
	if ((r = audience_log(a, sp, "ok", reason, id, stats, 1, err)) != 0 || (r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
out:
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	for (s = 0; s < 2; s++) {
		if (w.tok[s] != NULL)
			sodium_memzero(w.tok[s], w.cap * sizeof(*w.tok[s]));
		free(w.tok[s]);
	}
	rule_free(rule);
	segment_free(seg);
	free(cols);
	join_free(&j);
	return r;
}

void
audience_deliveries_free(struct audience_delivery *d, size_t n)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < n; i++)
		free(d[i].sealed);
	free(d);
}

/* The tokens a pending delivery holds now: the audience's members at `partner`, or an experiment's treatment. */
static int
audience_delivery_tokens(struct store *st, const char *name, const char *partner, int experiment, struct token **out,
    size_t *n, struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int rc, r = 0;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(store_db(st), experiment ?
	    "SELECT m.kind, m.token FROM experiment_subjects e JOIN experiments x ON x.name = e.experiment "
	    "JOIN audience_members m ON m.audience = x.audience AND m.partner = e.partner AND m.token = e.token "
	    "WHERE e.experiment = ?1 AND e.partner = ?2 AND e.arm = 1" :
	    "SELECT kind, token FROM audience_members WHERE audience = ?1 AND partner = ?2", -1, &q, NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 1) != TOKEN_LEN) {
			r = cg_err_set(err, CG_ERR_DB, "a stored member's token is malformed");
			goto out;
		}
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct token *t = realloc(*out, ncap * sizeof(*t));
			if (t == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory reading a delivery");
				goto out;
			}
			*out = t;
			cap = ncap;
		}
		(*out)[*n].kind = (uint32_t)sqlite3_column_int(q, 0);
		memcpy((*out)[*n].value, sqlite3_column_blob(q, 1), TOKEN_LEN);
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		r = audience_dberr(st, "read the members", err);
out:
	sqlite3_finalize(q);
	return r;
}

int
audience_fetch(struct store *st, struct audit *a, const struct policy *pol, const char *partner, int all,
    struct audience_delivery **out, size_t *n, struct cg_err *err)
{
	const struct policy_partner *pp = policy_partner_find(pol, partner);
	struct audience_delivery *d = NULL;
	sqlite3_stmt *q = NULL, *u = NULL;
	size_t cnt = 0, cap = 0;
	int r, in_txn = 0;

	*out = NULL;
	*n = 0;
	if (pp == NULL)
		return cg_err_set(err, CG_ERR_ARG, "no partner '%s' in the policy", partner);
	if ((r = audience_schema(st, err)) != 0 || (r = store_begin(st, err)) != 0)
		return r;
	in_txn = 1;
	if (sqlite3_prepare_v2(store_db(st), all ? "SELECT id, audience, created, audience_id, experiment FROM "
	    "audience_deliveries WHERE partner = ?1 ORDER BY created, rowid" : "SELECT id, audience, created, audience_id, "
	    "experiment FROM audience_deliveries WHERE partner = ?1 AND fetched = 0 ORDER BY created, rowid", -1, &q,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store_db(st), "UPDATE audience_deliveries SET fetched = fetched + 1 WHERE id = ?1", -1, &u,
	    NULL) != SQLITE_OK) {
		r = audience_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(q, 1, partner, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		struct audience_delivery *x;
		struct delivery dl;
		Crossgate__AuditEvent ev;
		unsigned char idb[16];
		size_t idl = 0;
		const char *aid = (const char *)sqlite3_column_text(q, 3);

		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			if ((x = realloc(d, ncap * sizeof(*d))) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
				goto out;
			}
			d = x;
			cap = ncap;
		}
		x = &d[cnt];
		memset(x, 0, sizeof(*x));
		cnt++;
		snprintf(x->id, sizeof(x->id), "%s", (const char *)sqlite3_column_text(q, 0));
		snprintf(x->audience, sizeof(x->audience), "%s", (const char *)sqlite3_column_text(q, 1));
		x->created = sqlite3_column_int64(q, 2);
		/* sealed now, from the members as they are now: a user erased since the audience is not in it */
		memset(&dl, 0, sizeof(dl));
		if (aid == NULL || sodium_hex2bin(dl.audience_id, sizeof(dl.audience_id), aid, strlen(aid), NULL, &idl,
		    NULL) != 0 || idl != sizeof(dl.audience_id)) {
			r = cg_err_set(err, CG_ERR_DB, "a stored delivery is malformed");
			goto out;
		}
		snprintf(dl.partner, sizeof(dl.partner), "%s", partner);
		snprintf(dl.name, sizeof(dl.name), "%s", x->audience);
		dl.created = x->created;
		if ((r = audience_delivery_tokens(st, x->audience, partner, sqlite3_column_int(q, 4), &dl.tokens, &dl.n,
		    err)) == 0)
			r = delivery_seal(&dl, pp->signing_pub, &x->sealed, &x->len, err);
		if (dl.tokens != NULL)
			sodium_memzero(dl.tokens, dl.n * sizeof(*dl.tokens));
		free(dl.tokens);
		if (r != 0)
			goto out;
		sqlite3_bind_text(u, 1, x->id, -1, SQLITE_STATIC);
		if (sqlite3_step(u) != SQLITE_DONE) {
			r = audience_dberr(st, "mark a delivery fetched", err);
			goto out;
		}
		sqlite3_reset(u);
		crossgate__audit_event__init(&ev);
		ev.actor = (char *)partner;
		ev.action = (char *)"audience-fetch";
		ev.outcome = (char *)"ok";
		ev.reason = x->audience;
		ev.partner_id = (char *)partner;
		ev.purpose = (char *)AUDIENCE_PURPOSE;
		if (sodium_hex2bin(idb, sizeof(idb), x->id, strlen(x->id), NULL, &idl, NULL) == 0 && idl == 16) {
			ev.batch_id.data = idb;
			ev.batch_id.len = 16;
		}
		if ((r = audit_append(a, &ev, err)) != 0)
			goto out;
	}
	if (r != SQLITE_DONE) {
		r = audience_dberr(st, "read the deliveries", err);
		goto out;
	}
	if ((r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
	*out = d;
	*n = cnt;
	d = NULL;
	r = 0;
out:
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	audience_deliveries_free(d, cnt);
	return r;
}

/*
 * Delete the subjects whose `partner` row matches `cond` (on k: kind, token; a point lookup, never a list
 * built per row) from experiments and audiences.  The subject goes at both partners.  The matching
 * (audience, subject) pairs are found in one pass over the partner's members, into a temporary table; the
 * deletes are driven from it by indexed lookups (CROSS JOIN fixes that order: without statistics SQLite
 * would scan every experiment subject instead), so the work is linear in the members plus what goes
 * (tests/unit/test_audience_erase.c counts it; the correlated subqueries this replaced held an ingest
 * for minutes).
 */
static int
audience_erase_where(struct store *st, const char *partner, const char *cond, struct cg_err *err)
{
	static const char *const del[2] = {
		/* its experiment arms first, found through its members' rows */
		"DELETE FROM experiment_subjects WHERE rowid IN (SELECT e.rowid FROM temp.audience_gone g "
		"CROSS JOIN audience_members m ON m.audience = g.audience AND m.subject = g.subject "
		"CROSS JOIN experiments x ON x.audience = m.audience "
		"CROSS JOIN experiment_subjects e ON e.experiment = x.name AND e.partner = m.partner AND e.token = m.token)",
		"DELETE FROM audience_members WHERE (audience, subject) IN (SELECT audience, subject FROM temp.audience_gone)",
	};
	sqlite3 *db = store_db(st);
	sqlite3_stmt *q = NULL;
	char sql[512];
	int i, r;

	if ((r = audience_schema(st, err)) != 0 || (r = experiment_schema(st, err)) != 0)
		return r;
	if (sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS audience_gone(audience TEXT NOT NULL, subject INTEGER NOT "
	    "NULL, PRIMARY KEY (audience, subject)) WITHOUT ROWID; DELETE FROM temp.audience_gone;", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return audience_dberr(st, "prepare the erasure", err);
	if ((size_t)snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO temp.audience_gone SELECT audience, subject "
	    "FROM audience_members k WHERE k.partner = ?1 AND %s", cond) >= sizeof(sql))
		return cg_err_set(err, CG_ERR_INTERNAL, "erasure: the member condition is too long");
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, partner, -1, SQLITE_STATIC);
	r = sqlite3_step(q) == SQLITE_DONE ? 0 : audience_dberr(st, "find the erased members", err);
	sqlite3_finalize(q);
	if (r != 0 || sqlite3_changes(db) == 0)
		goto out;
	for (i = 0; i < 2 && r == 0; i++)
		if (sqlite3_exec(db, del[i], NULL, NULL, NULL) != SQLITE_OK)
			r = audience_dberr(st, "erase members", err);
out:
	if (sqlite3_exec(db, "DELETE FROM temp.audience_gone", NULL, NULL, NULL) != SQLITE_OK && r == 0)
		r = audience_dberr(st, "clear the erased members", err);
	return r;
}

int
audience_erase_staged(struct store *st, const char *partner, struct cg_err *err)
{
	/*
	 * A staged token is a user's key (join.h), as erase_apply reads it; an
	 * audience member's token is its key too (audience_key_token), so the
	 * kinds match exactly.
	 */
	return audience_erase_where(st, partner, "EXISTS (SELECT 1 FROM temp.erase_pending p WHERE p.kind = k.kind AND p.token = k.token)",
	    err);
}

int
audience_erase_orphans(struct store *st, const char *partner, struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	int64_t any = 0;
	int r;

	if ((r = audience_schema(st, err)) != 0)
		return r;
	if (sqlite3_prepare_v2(store_db(st), "SELECT EXISTS(SELECT 1 FROM audience_members WHERE partner = ?1)", -1, &q,
	    NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, partner, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		any = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (!any)
		return 0;
	/* the keys the partner's records still have, in one pass over them */
	if (sqlite3_exec(store_db(st), "CREATE TEMP TABLE IF NOT EXISTS audience_keys(kind INTEGER NOT NULL, "
	    "token BLOB NOT NULL, PRIMARY KEY (kind, token)) WITHOUT ROWID; DELETE FROM temp.audience_keys;", NULL, NULL,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store_db(st), "INSERT OR IGNORE INTO temp.audience_keys SELECT CASE WHEN email_token IS NOT "
	    "NULL THEN 1 ELSE 2 END, coalesce(email_token, phone_token) FROM records WHERE partner = ?1 AND "
	    "coalesce(email_token, phone_token) IS NOT NULL", -1, &q, NULL) != SQLITE_OK)
		return audience_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, partner, -1, SQLITE_STATIC);
	r = sqlite3_step(q) == SQLITE_DONE ? 0 : audience_dberr(st, "read the keys", err);
	sqlite3_finalize(q);
	if (r == 0)
		r = audience_erase_where(st, partner, "NOT EXISTS (SELECT 1 FROM temp.audience_keys p WHERE p.kind = k.kind "
		    "AND p.token = k.token)", err);
	if (sqlite3_exec(store_db(st), "DELETE FROM temp.audience_keys", NULL, NULL, NULL) != SQLITE_OK && r == 0)
		r = audience_dberr(st, "clear the keys", err);
	return r;
}

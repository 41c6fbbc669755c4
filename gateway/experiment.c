/* experiment.c - see experiment.h */
#include "gateway/experiment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/audience.h"

#define EXPERIMENT_SUBJECT_LEN (2 * (1 + TOKEN_LEN))
static const char experiment_key_label[] = "crossgate experiment key v1\n";

static int
experiment_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: experiments: %s: %s", store_path(st), what, sqlite3_errmsg(store_db(st)));
}

int
experiment_schema(struct store *st, struct cg_err *err)
{
	static const char sql[] =
	    "CREATE TABLE IF NOT EXISTS experiments("
	    "  name TEXT PRIMARY KEY, id TEXT NOT NULL, audience TEXT NOT NULL, partner TEXT NOT NULL,"
	    "  analyst TEXT NOT NULL, holdout_nano INTEGER NOT NULL, sealed_key BLOB NOT NULL,"
	    "  created INTEGER NOT NULL) STRICT;"
	    "CREATE TABLE IF NOT EXISTS experiment_subjects("
	    "  experiment TEXT NOT NULL, partner TEXT NOT NULL, token BLOB NOT NULL, arm INTEGER NOT NULL"
	    "  CHECK (arm IN (0, 1))) STRICT;"
	    "CREATE INDEX IF NOT EXISTS experiment_subjects_of ON experiment_subjects(experiment, partner, token);"
	    /* an erasure goes from an audience's members to its experiments */
	    "CREATE INDEX IF NOT EXISTS experiments_audience ON experiments(audience);";

	if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
		return experiment_dberr(st, "create", err);
	return 0;
}

int
experiment_arm(const unsigned char key[32], const unsigned char subject[66], int64_t holdout_nano)
{
	unsigned char h[crypto_auth_hmacsha256_BYTES];
	unsigned __int128 cut;
	uint64_t x = 0;
	int i;

	crypto_auth_hmacsha256(h, subject, EXPERIMENT_SUBJECT_LEN, key);
	for (i = 0; i < 8; i++)
		x = x << 8 | h[i];
	sodium_memzero(h, sizeof(h));
	/* control iff x < holdout * 2^64, exactly: holdout_nano / 1e9 * 2^64 */
	cut = ((unsigned __int128)(uint64_t)holdout_nano << 64) / 1000000000u;
	return (unsigned __int128)x < cut ? 0 : 1;
}

int
experiment_partner(struct store *st, const char *name, char partner[65], struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	int r;

	if ((r = experiment_schema(st, err)) != 0)
		return r;
	if (sqlite3_prepare_v2(store_db(st), "SELECT partner FROM experiments WHERE name = ?1", -1, &q, NULL) !=
	    SQLITE_OK)
		return experiment_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(partner, 65, "%s", (const char *)sqlite3_column_text(q, 0));
		r = 0;
	} else if (r == SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_NOTFOUND, "no experiment named '%.64s'", name);
	else
		r = experiment_dberr(st, "read the experiment", err);
	sqlite3_finalize(q);
	return r;
}

static int
experiment_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= AUDIENCE_NAME_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* The audience's owner, its two partners (left, right) and its released noisy size, or CG_ERR_NOTFOUND. */
static int
experiment_audience(struct store *st, const char *name, char analyst[65], char side[2][65], int64_t *noisy,
    struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	int r;

	if (sqlite3_prepare_v2(store_db(st), "SELECT analyst, left_partner, right_partner, noisy_size FROM audiences "
	    "WHERE name = ?1", -1, &q, NULL) != SQLITE_OK)
		return experiment_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(analyst, 65, "%s", (const char *)sqlite3_column_text(q, 0));
		snprintf(side[0], 65, "%s", (const char *)sqlite3_column_text(q, 1));
		snprintf(side[1], 65, "%s", (const char *)sqlite3_column_text(q, 2));
		*noisy = sqlite3_column_int64(q, 3);
		r = 0;
	} else if (r == SQLITE_DONE)
		r = cg_err_set(err, CG_ERR_NOTFOUND, "no audience named '%s'", name);
	else
		r = experiment_dberr(st, "read the audience", err);
	sqlite3_finalize(q);
	return r;
}

/* One integer from a query with two text parameters. */
static int
experiment_count(struct store *st, const char *sql, const char *a1, const char *a2, int64_t *out, struct cg_err *err)
{
	sqlite3_stmt *q = NULL;
	int r = 0;

	*out = 0;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) != SQLITE_OK)
		return experiment_dberr(st, "prepare", err);
	sqlite3_bind_text(q, 1, a1, -1, SQLITE_STATIC);
	if (a2 != NULL)
		sqlite3_bind_text(q, 2, a2, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	else
		r = experiment_dberr(st, "read", err);
	sqlite3_finalize(q);
	return r;
}

static int
experiment_refuse(struct audit *a, const struct experiment_spec *sp, const char *reason, int code,
    struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	struct cg_err why = *err;
	int r;

	crossgate__audit_event__init(&ev);
	ev.actor = (char *)(sp->analyst != NULL ? sp->analyst->name : "analyst");
	ev.action = (char *)"experiment";
	ev.outcome = (char *)"refused";
	ev.reason = (char *)reason;
	ev.purpose = (char *)AUDIENCE_PURPOSE;
	ev.policy_hash.data = (uint8_t *)sp->pol->hash;
	ev.policy_hash.len = sizeof(sp->pol->hash);
	if ((r = audit_log(a, &ev, err)) != 0)
		return r;
	*err = why;
	return code;
}

/* Arms for every member, recorded at both partners. */
static int
experiment_split(struct store *st, const struct experiment_spec *sp, const unsigned char key[32],
    const char side[2][65], struct cg_err *err)
{
	sqlite3_stmt *q = NULL, *ins = NULL;
	unsigned char subj[EXPERIMENT_SUBJECT_LEN];
	struct token cur[2];
	int64_t subject = -1;
	int have = 0, r = 0, rc, s;

	if (sqlite3_prepare_v2(store_db(st), "SELECT subject, partner, kind, token FROM audience_members "
	    "WHERE audience = ?1 ORDER BY subject", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(store_db(st), "INSERT INTO experiment_subjects(experiment, partner, token, arm) "
	    "VALUES (?1, ?2, ?3, ?4)", -1, &ins, NULL) != SQLITE_OK) {
		r = experiment_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(q, 1, sp->audience, -1, SQLITE_STATIC);
	for (;;) {
		rc = sqlite3_step(q);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			r = experiment_dberr(st, "read the members", err);
			goto out;
		}
		/* a subject is complete when the next one starts (or the rows end) */
		if (have == 3 && (rc == SQLITE_DONE || sqlite3_column_int64(q, 0) != subject)) {
			int arm;

			for (s = 0; s < 2; s++) {
				subj[s * 33] = (unsigned char)cur[s].kind;
				memcpy(subj + s * 33 + 1, cur[s].value, TOKEN_LEN);
			}
			arm = experiment_arm(key, subj, sp->pol->marketing.holdout_nano);
			for (s = 0; s < 2; s++) {
				sqlite3_bind_text(ins, 1, sp->name, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins, 2, side[s], -1, SQLITE_STATIC);
				sqlite3_bind_blob(ins, 3, cur[s].value, TOKEN_LEN, SQLITE_STATIC);
				sqlite3_bind_int(ins, 4, arm);
				if (sqlite3_step(ins) != SQLITE_DONE) {
					r = experiment_dberr(st, "record an arm", err);
					goto out;
				}
				sqlite3_reset(ins);
			}
			have = 0;
		} else if (have != 0 && (rc == SQLITE_DONE || sqlite3_column_int64(q, 0) != subject)) {
			r = cg_err_set(err, CG_ERR_DB, "audience '%s': a member lacks one partner's token", sp->audience);
			goto out;
		}
		if (rc == SQLITE_DONE)
			break;
		subject = sqlite3_column_int64(q, 0);
		s = strcmp((const char *)sqlite3_column_text(q, 1), side[0]) == 0 ? 0 : 1;
		if (sqlite3_column_bytes(q, 3) != TOKEN_LEN || (have & (1 << s))) {
			r = cg_err_set(err, CG_ERR_DB, "audience '%s': a malformed member", sp->audience);
			goto out;
		}
		cur[s].kind = (uint32_t)sqlite3_column_int(q, 2);
		memcpy(cur[s].value, sqlite3_column_blob(q, 3), TOKEN_LEN);
		have |= 1 << s;
	}
out:
	sodium_memzero(subj, sizeof(subj));
	sodium_memzero(cur, sizeof(cur));
	sqlite3_finalize(q);
	sqlite3_finalize(ins);
	return r;
}

int
experiment_create(struct store *st, struct audit *a, const struct experiment_spec *sp, struct experiment_stats *stats,
    struct cg_err *err)
{
	const struct policy *pol = sp->pol;
	const struct policy_partner *pp = NULL;
	unsigned char key[32], sub[SEAL_KEY_LEN], nonce[crypto_secretbox_NONCEBYTES], boxed[32 + crypto_secretbox_MACBYTES];
	unsigned char blob[sizeof(nonce) + sizeof(boxed)], id[16], label[sizeof(experiment_key_label) + AUDIENCE_NAME_MAX];
	char owner[65], side[2][65], id_hex[33], reason[256];
	size_t llen;
	int64_t n = 0, noisy = 0, share;
	int r, camp = -1, s, in_txn = 0;
	sqlite3_stmt *q = NULL;
	time_t now = time(NULL);

	memset(stats, 0, sizeof(*stats));
	stats->holdout_nano = pol->marketing.holdout_nano;
	if ((r = audience_schema(st, err)) != 0 || (r = experiment_schema(st, err)) != 0)
		return r;
	if (!experiment_name_ok(sp->name))
		return cg_err_set(err, CG_ERR_ARG, "an experiment name is 1 to %d of a-z, 0-9, '_', '-'", AUDIENCE_NAME_MAX);
	if (sp->analyst == NULL || !policy_principal_may_export(pol, sp->analyst, AUDIENCE_PURPOSE)) {
		cg_err_set(err, CG_ERR_POLICY, "analyst '%s' is not granted the purpose '%s'",
		    sp->analyst != NULL ? sp->analyst->name : "?", AUDIENCE_PURPOSE);
		return experiment_refuse(a, sp, "analyst not granted marketing", CG_ERR_POLICY, err);
	}
	if ((r = experiment_audience(st, sp->audience, owner, side, &noisy, err)) != 0)
		return r;
	if (strcmp(owner, sp->analyst->name) != 0) {
		cg_err_set(err, CG_ERR_POLICY, "audience '%s' is another analyst's", sp->audience);
		return experiment_refuse(a, sp, "the audience is another analyst's", CG_ERR_POLICY, err);
	}
	if ((r = experiment_count(st, "SELECT (SELECT count(*) FROM experiments WHERE name = ?1) + "
	    "(SELECT count(*) FROM audiences WHERE name = ?1)", sp->name, NULL, &n, err)) != 0)
		return r;
	if (n != 0)
		return cg_err_set(err, CG_ERR_ARG, "the name '%s' is taken (by an experiment or an audience)", sp->name);
	for (s = 0; s < 2; s++)
		if (sp->partner != NULL ? strcmp(sp->partner, side[s]) == 0 :
		    policy_partner_may_receive(pol, side[s])) {
			if (camp >= 0 && sp->partner == NULL)
				return cg_err_set(err, CG_ERR_ARG, "both partners of audience '%s' receive audiences: name the "
				    "campaign partner with --partner", sp->audience);
			camp = s;
		}
	if (camp < 0 || (pp = policy_partner_find(pol, side[camp])) == NULL || !policy_partner_may_receive(pol, pp->id)) {
		cg_err_set(err, CG_ERR_POLICY, "the campaign partner must be one of the audience's partners (%s, %s) that "
		    "the policy lets receive audiences (marketing: receivers)", side[0], side[1]);
		return experiment_refuse(a, sp, "the campaign partner may not receive audiences", CG_ERR_POLICY, err);
	}
	snprintf(stats->partner, sizeof(stats->partner), "%s", pp->id);
	/*
	 * Each arm must be about min_audience or more, judged on the size
	 * already released to this analyst (the noisy size), so that the
	 * refusal reveals nothing new; the lift (lift.h) counts on it.
	 */
	share = pol->marketing.holdout_nano < 500000000 ? pol->marketing.holdout_nano :
	    1000000000 - pol->marketing.holdout_nano;
	if ((__int128)noisy * share < (__int128)pol->marketing.min_audience * 1000000000) {
		cg_err_set(err, CG_ERR_POLICY, "audience '%s' (noisy size %lld) would give an arm of about %lld subjects, "
		    "below the policy's min_audience %u: make a larger audience, or a holdout nearer 0.5", sp->audience,
		    (long long)noisy, (long long)((__int128)noisy * share / 1000000000), pol->marketing.min_audience);
		return experiment_refuse(a, sp, "an arm would be smaller than min_audience (by the noisy size)",
		    CG_ERR_POLICY, err);
	}
	if ((r = experiment_count(st, "SELECT count(*) FROM audience_deliveries WHERE audience = ?1 AND partner = ?2 "
	    "AND fetched > 0", sp->audience, pp->id, &n, err)) != 0)
		return r;
	if (n != 0) {
		cg_err_set(err, CG_ERR_POLICY, "partner '%s' has already fetched audience '%s': its control users would "
		    "reach the campaign; make a new audience for the experiment", pp->id, sp->audience);
		return experiment_refuse(a, sp, "the campaign partner already fetched the audience", CG_ERR_POLICY, err);
	}

	/* The key: random, kept only sealed under a subkey of the storage key (held here, not by a monitor). */
	if (sp->storage->agent != NULL || sp->storage->key == NULL)
		return cg_err_set(err, CG_ERR_ARG, "experiment '%s': the storage key is not in this process (experiments "
		    "are created offline, with the key file)", sp->name);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(id_hex, sizeof(id_hex), id, sizeof(id));
	llen = strlen(experiment_key_label);
	memcpy(label, experiment_key_label, llen);
	memcpy(label + llen, sp->name, strlen(sp->name));
	seal_subkey(sp->storage->key, label, llen + strlen(sp->name), sub);
	crypto_secretbox_easy(boxed, key, sizeof(key), nonce, sub);
	sodium_memzero(sub, sizeof(sub));
	memcpy(blob, nonce, sizeof(nonce));
	memcpy(blob + sizeof(nonce), boxed, sizeof(boxed));

	if ((r = store_begin(st, err)) != 0)
		goto out;
	in_txn = 1;
	if (sqlite3_prepare_v2(store_db(st), "DELETE FROM audience_deliveries WHERE audience = ?1 AND partner = ?2 AND "
	    "fetched = 0", -1, &q, NULL) != SQLITE_OK) {
		r = experiment_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(q, 1, sp->audience, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, pp->id, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		r = experiment_dberr(st, "withdraw the audience's delivery", err);
		goto out;
	}
	sqlite3_finalize(q);
	if (sqlite3_prepare_v2(store_db(st), "INSERT INTO experiments(name, id, audience, partner, analyst, holdout_nano, "
	    "sealed_key, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &q, NULL) != SQLITE_OK) {
		q = NULL;
		r = experiment_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(q, 1, sp->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, id_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, sp->audience, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, pp->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, sp->analyst->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, pol->marketing.holdout_nano);
	sqlite3_bind_blob(q, 7, blob, sizeof(blob), SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, (int64_t)now);
	if (sqlite3_step(q) != SQLITE_DONE) {
		r = experiment_dberr(st, "store the experiment", err);
		goto out;
	}
	if ((r = experiment_split(st, sp, key, side, err)) != 0 ||
	    (r = audience_delivery_add(st, a, pol, sp->name, id, pp, 1, (int64_t)now, err)) != 0)
		goto out;
	{
		Crossgate__AuditEvent ev;
		Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;

		snprintf(reason, sizeof(reason), "audience %s; campaign partner %s", sp->audience, pp->id);
		crossgate__audit_event__init(&ev);
		crossgate__audit_event__counts_entry__init(&ce);
		ev.actor = (char *)sp->analyst->name;
		ev.action = (char *)"experiment";
		ev.outcome = (char *)"ok";
		ev.reason = reason;
		ev.partner_id = pp->id;
		ev.purpose = (char *)AUDIENCE_PURPOSE;
		ev.batch_id.data = id;
		ev.batch_id.len = sizeof(id);
		ev.policy_hash.data = (uint8_t *)pol->hash;
		ev.policy_hash.len = sizeof(pol->hash);
		ce.key = (char *)"holdout_ppm";
		ce.value = (uint64_t)(pol->marketing.holdout_nano / 1000);
		ev.counts = &cep;
		ev.n_counts = 1;
		if ((r = audit_append(a, &ev, err)) != 0)
			goto out;
		stats->audit_index = ev.seq;
	}
	if ((r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
out:
	sqlite3_finalize(q);
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	sodium_memzero(key, sizeof(key));
	return r;
}

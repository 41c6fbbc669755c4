/* erase.c - see erase.h */
#define _GNU_SOURCE   /* qsort_r: the staged tokens are sorted by index */
#include "gateway/erase.h"
#include "gateway/audience.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "crypto/seal.h"
#include "audit/audit.h"
#include "policy/policy.h"

static const char erase_tombstone_ctx[] = "crossgate tombstone v1";

static int
erase_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: %s: %s", store_path(st), what, sqlite3_errmsg(store_db(st)));
}

int
erase_schema(struct store *st, struct cg_err *err)
{
	if (sqlite3_exec(store_db(st),
	    "CREATE TABLE IF NOT EXISTS tombstones("
	    "  partner TEXT NOT NULL,"
	    "  key BLOB NOT NULL,"
	    "  revoked_at INTEGER NOT NULL,"
	    "  PRIMARY KEY (partner, key)) WITHOUT ROWID, STRICT;", NULL, NULL, NULL) != SQLITE_OK)
		return erase_dberr(st, "create tombstones", err);
	return 0;
}

/* The tombstone of one token: keyed BLAKE2b under the tombstone subkey, so the table holds no token. */
static void
erase_key_sub(const unsigned char sub[32], const struct token *t, unsigned char out[32])
{
	unsigned char kind = (unsigned char)t->kind;
	crypto_generichash_state h;

	crypto_generichash_init(&h, sub, 32, 32);
	crypto_generichash_update(&h, &kind, 1);
	crypto_generichash_update(&h, t->value, TOKEN_LEN);
	crypto_generichash_final(&h, out, 32);
}

/* The tombstone subkey; with an agent (privilege separation) the monitor derives it and it stays zero here. */
static void
erase_subkey(const struct keyfile_key *storage, unsigned char sub[32])
{
	if (storage->agent != NULL) {
		memset(sub, 0, 32);
		return;
	}
	seal_subkey(storage->key, (const unsigned char *)erase_tombstone_ctx, sizeof(erase_tombstone_ctx) - 1, sub);
}

/* The tombstones of n tokens: here under sub, or by the storage key's agent, which holds the key. */
static int
erase_keys(const struct keyfile_key *storage, const unsigned char sub[32], const struct token *t, size_t n,
    unsigned char (*out)[32], struct cg_err *err)
{
	/* the request's buffers on the heap: a server connection's thread has a small stack */
	unsigned char *kinds = NULL, *toks = NULL;
	size_t i, done, m;
	int r = 0;

	if (storage->agent == NULL) {
		for (i = 0; i < n; i++)
			erase_key_sub(sub, &t[i], out[i]);
		return 0;
	}
	m = n < KEYFILE_AGENT_TOMBSTONES_MAX ? n : KEYFILE_AGENT_TOMBSTONES_MAX;
	if (m == 0)
		return 0;
	if ((kinds = malloc(m)) == NULL || (toks = malloc(m * TOKEN_LEN)) == NULL) {
		free(kinds);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	for (done = 0; done < n && r == 0; done += m) {
		m = n - done < KEYFILE_AGENT_TOMBSTONES_MAX ? n - done : KEYFILE_AGENT_TOMBSTONES_MAX;
		for (i = 0; i < m; i++) {
			kinds[i] = (unsigned char)t[done + i].kind;
			memcpy(toks + i * TOKEN_LEN, t[done + i].value, TOKEN_LEN);
		}
		r = storage->agent->tombstones(storage->agent->ctx, kinds, toks, m, out[done], err);
		sodium_memzero(toks, m * TOKEN_LEN);
	}
	free(kinds);
	free(toks);
	return r;
}

int
erase_tombstones(const struct keyfile_key *storage, const struct token *t, size_t n, unsigned char (*out)[32],
    struct cg_err *err)
{
	unsigned char sub[32];
	int r;

	erase_subkey(storage, sub);
	r = erase_keys(storage, sub, t, n, out, err);
	sodium_memzero(sub, sizeof(sub));
	return r;
}

/* The staging table is TEMP: private to this connection, and rolled back with the transaction. */
static int
erase_stage_schema(struct store *st, struct cg_err *err)
{
	if (sqlite3_exec(store_db(st), "CREATE TEMP TABLE IF NOT EXISTS erase_pending("
	    "  kind INTEGER NOT NULL, token BLOB NOT NULL, upto INTEGER NOT NULL,"
	    "  PRIMARY KEY (kind, token)) WITHOUT ROWID;",
	    NULL, NULL, NULL) != SQLITE_OK)
		return erase_dberr(st, "create the staging table", err);
	return 0;
}

/* Where (kind, token) goes in a table of mask + 1 slots: SipHash under a random key (tokens are the partner's). */
static size_t
erase_home(const unsigned char key[crypto_shorthash_KEYBYTES], size_t mask, uint8_t kind,
    const unsigned char token[TOKEN_LEN])
{
	unsigned char in[1 + TOKEN_LEN], h[crypto_shorthash_BYTES];
	uint64_t v;

	in[0] = kind;
	memcpy(in + 1, token, TOKEN_LEN);
	crypto_shorthash(h, in, sizeof(in), key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & mask;
}

/* A staged token: what erase_apply erases, in memory until then. */
struct erase_staged {
	unsigned char token[TOKEN_LEN];
	int64_t upto, revoked_at;
	uint8_t kind;                        /* TOKEN_KIND_EMAIL or TOKEN_KIND_PHONE */
};

struct erase_stager {
	struct store *st;
	sqlite3_stmt *tomb;
	unsigned char sub[32];               /* the tombstone subkey, derived once */
	const struct keyfile_key *storage;
	char partner[65];
	/*
	 * The staged tokens, each once with its latest dates: an upsert into a
	 * table keyed at random cost the writer as much per withdrawal as a
	 * record's insert, and a tombstone a message to the key's process
	 * (privilege separation); erase_apply computes the tombstones together.
	 * slot finds a token (index + 1 into v, 0 empty): erase_apply's probe of
	 * every stored row, and erase_stager_covers, so that a record after its
	 * user's withdrawal in the same batch is kept out as a tombstone would.
	 */
	struct erase_staged *v;
	size_t n, cap;
	uint32_t *slot;
	size_t smask;
	unsigned char hkey[crypto_shorthash_KEYBYTES];
};

int
erase_stager_open(struct store *st, const struct keyfile_key *storage, const char *partner, struct erase_stager **out,
    struct cg_err *err)
{
	sqlite3 *db = store_db(st);
	struct erase_stager *s;
	int r;

	*out = NULL;
	if ((r = erase_schema(st, err)) != 0)
		return r;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	s->st = st;
	snprintf(s->partner, sizeof(s->partner), "%s", partner);
	s->storage = storage;
	erase_subkey(storage, s->sub);
	if (sqlite3_prepare_v2(db, "INSERT INTO tombstones(partner, key, revoked_at) VALUES (?1, ?2, ?3) "
	    "ON CONFLICT(partner, key) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)", -1,
	    &s->tomb, NULL) != SQLITE_OK) {
		r = erase_dberr(st, "prepare", err);
		erase_stager_close(s);
		return r;
	}
	*out = s;
	return 0;
}

static void erase_stager_unindex(struct erase_stager *s);

void
erase_stager_close(struct erase_stager *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->tomb);
	sodium_memzero(s->sub, sizeof(s->sub));
	if (s->v != NULL)
		sodium_memzero(s->v, s->cap * sizeof(*s->v));
	free(s->v);
	erase_stager_unindex(s);
	sodium_memzero(s->hkey, sizeof(s->hkey));
	free(s);
}

/* Room for one more staged token; the old array is wiped, as it holds tokens. */
static int
erase_stager_grow(struct erase_stager *s, struct cg_err *err)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	struct erase_staged *nv;

	if (ncap > SIZE_MAX / sizeof(*nv) || (nv = malloc(ncap * sizeof(*nv))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory staging an erasure");
	if (s->v != NULL) {
		memcpy(nv, s->v, s->n * sizeof(*nv));
		sodium_memzero(s->v, s->cap * sizeof(*s->v));
		free(s->v);
	}
	s->v = nv;
	s->cap = ncap;
	return 0;
}

/* The staged entry of (kind, token), or NULL. */
static struct erase_staged *
erase_stager_find(const struct erase_stager *s, uint8_t kind, const unsigned char *token)
{
	size_t i;

	if (s->slot == NULL)
		return NULL;
	for (i = erase_home(s->hkey, s->smask, kind, token); s->slot[i] != 0; i = (i + 1) & s->smask) {
		struct erase_staged *e = &s->v[s->slot[i] - 1];
		if (e->kind == kind && memcmp(e->token, token, TOKEN_LEN) == 0)
			return e;
	}
	return NULL;
}

/* Drop the table (it tells which tokens are staged: wiped). */
static void
erase_stager_unindex(struct erase_stager *s)
{
	if (s->slot != NULL)
		sodium_memzero(s->slot, (s->smask + 1) * sizeof(*s->slot));
	free(s->slot);
	s->slot = NULL;
	s->smask = 0;
}

/* Index v[0..n) anew in a table of at least 4 slots per entry, one more entry counted. */
static int
erase_stager_index(struct erase_stager *s, struct cg_err *err)
{
	size_t cap = 64, i, j;
	uint32_t *ns;

	if (s->n + 1 > UINT32_MAX / 4)
		return cg_err_set(err, CG_ERR_LIMIT, "more than %u withdrawals in one batch", UINT32_MAX / 4);
	while (cap < 4 * (s->n + 1))
		cap *= 2;
	if ((ns = calloc(cap, sizeof(*ns))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory staging an erasure");
	if (s->slot == NULL)
		randombytes_buf(s->hkey, sizeof(s->hkey));
	erase_stager_unindex(s);
	s->slot = ns;
	s->smask = cap - 1;
	for (j = 0; j < s->n; j++) {
		for (i = erase_home(s->hkey, s->smask, s->v[j].kind, s->v[j].token); s->slot[i] != 0;
		    i = (i + 1) & s->smask)
			;
		s->slot[i] = (uint32_t)(j + 1);
	}
	return 0;
}

int
erase_stager_add(struct erase_stager *s, const struct token *tokens, size_t n, int64_t revoked_at, int64_t erase_upto,
    struct cg_err *err)
{
	size_t i, h;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		struct erase_staged *e;
		uint8_t kind = (uint8_t)tokens[i].kind;

		if (tokens[i].kind != TOKEN_KIND_EMAIL && tokens[i].kind != TOKEN_KIND_PHONE)
			return cg_err_set(err, CG_ERR_FORMAT, "token %zu: unknown kind", i);
		/* staged before: the later of each date, as the upserts into keyed tables did */
		if ((e = erase_stager_find(s, kind, tokens[i].value)) != NULL) {
			if (erase_upto > e->upto)
				e->upto = erase_upto;
			if (revoked_at > e->revoked_at)
				e->revoked_at = revoked_at;
			continue;
		}
		if ((s->n == s->cap && (r = erase_stager_grow(s, err)) != 0) ||
		    (2 * (s->n + 1) > s->smask + 1 && (r = erase_stager_index(s, err)) != 0))
			break;
		e = &s->v[s->n];
		memcpy(e->token, tokens[i].value, TOKEN_LEN);
		e->upto = erase_upto;
		e->revoked_at = revoked_at;
		e->kind = kind;
		for (h = erase_home(s->hkey, s->smask, kind, e->token); s->slot[h] != 0; h = (h + 1) & s->smask)
			;
		s->slot[h] = (uint32_t)++s->n;
	}
	return r;
}

int
erase_stager_covers(const struct erase_stager *s, const struct token *key, int64_t consent_at)
{
	const struct erase_staged *e = erase_stager_find(s, (uint8_t)key->kind, key->value);

	return e != NULL && consent_at <= e->revoked_at;
}

/* The staged tokens' tombstones (sg->v[0..n), each once), dated their latest revoked_at. */
static int
erase_stager_tombstones(struct erase_stager *sg, struct cg_err *err)
{
	enum { CHUNK = KEYFILE_AGENT_TOMBSTONES_MAX };
	struct token *t = NULL;
	unsigned char (*key)[32] = NULL;
	size_t done, m, i;
	int r = 0;

	if ((t = malloc(CHUNK * sizeof(*t))) == NULL || (key = malloc(CHUNK * sizeof(*key))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	sqlite3_bind_text(sg->tomb, 1, sg->partner, -1, SQLITE_STATIC);
	for (done = 0; done < sg->n && r == 0; done += m) {
		m = sg->n - done < CHUNK ? sg->n - done : CHUNK;
		for (i = 0; i < m; i++) {
			t[i].kind = sg->v[done + i].kind;
			memcpy(t[i].value, sg->v[done + i].token, TOKEN_LEN);
		}
		if ((r = erase_keys(sg->storage, sg->sub, t, m, key, err)) != 0)
			break;
		for (i = 0; i < m && r == 0; i++) {
			sqlite3_bind_blob(sg->tomb, 2, key[i], sizeof(key[i]), SQLITE_STATIC);
			sqlite3_bind_int64(sg->tomb, 3, sg->v[done + i].revoked_at);
			if (sqlite3_step(sg->tomb) != SQLITE_DONE)
				r = erase_dberr(sg->st, "record tombstone", err);
			sqlite3_reset(sg->tomb);
		}
	}
out:
	if (t != NULL)
		sodium_memzero(t, CHUNK * sizeof(*t));
	if (key != NULL)
		sodium_memzero(key, CHUNK * sizeof(*key));
	free(t);
	free(key);
	return r;
}

static int
erase_staged_order(const void *a, const void *b, void *v)
{
	const struct erase_staged *e = v, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->token, y->token, TOKEN_LEN);
}

/*
 * The staged tokens in key order into temp.erase_pending, which
 * audience_erase_staged joins against (in order, each insert appends).  The
 * sort moves indices, not entries: a sort's scratch space would keep a copy
 * of a token that nothing wipes.
 */
static int
erase_stager_fill(struct erase_stager *sg, struct cg_err *err)
{
	sqlite3 *db = store_db(sg->st);
	sqlite3_stmt *s = NULL;
	size_t *ord = NULL, j;
	int r;

	if (sg->n > 0 && (ord = malloc(sg->n * sizeof(*ord))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory staging an erasure");
	for (j = 0; j < sg->n; j++)
		ord[j] = j;
	if (sg->n > 0)
		qsort_r(ord, sg->n, sizeof(*ord), erase_staged_order, sg->v);
	/* empty unless an earlier apply in this transaction failed after filling it */
	if (sqlite3_exec(db, "DELETE FROM temp.erase_pending", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO temp.erase_pending(kind, token, upto) VALUES (?1, ?2, ?3)", -1, &s,
	    NULL) != SQLITE_OK) {
		r = erase_dberr(sg->st, "stage the erased tokens", err);
		goto out;
	}
	for (j = 0; j < sg->n; j++) {
		const struct erase_staged *e = &sg->v[ord[j]];

		sqlite3_bind_int(s, 1, e->kind);
		sqlite3_bind_blob(s, 2, e->token, TOKEN_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, e->upto);
		if (sqlite3_step(s) != SQLITE_DONE) {
			r = erase_dberr(sg->st, "stage the erased tokens", err);
			goto out;
		}
		sqlite3_reset(s);
	}
	r = 0;
out:
	sqlite3_finalize(s);
	free(ord);
	return r;
}

/*
 * Delete the partner's rows of one table (records or outcomes) whose key
 * is staged: a staged email erases the rows with that email; a staged phone
 * only the rows without an email, since a phone another person gives too
 * must not erase that person's rows; either only up to its erase_upto.  One
 * pass over the table, a probe in memory per row, then the rows found are
 * deleted by id (a correlated IN on every row cost as much as inserting
 * the batch's records).
 */
static int
erase_rows(const struct erase_stager *sg, int outcomes, uint64_t *erased, struct cg_err *err)
{
	static const char *const scan[2] = {
		"SELECT id, email_token, phone_token, consent_at FROM records WHERE partner = ?1",
		"SELECT id, email_token, phone_token, consent_at FROM outcomes WHERE partner = ?1",
	};
	static const char *const del[2] = {
		"DELETE FROM records WHERE id = ?1",
		"DELETE FROM outcomes WHERE id = ?1",
	};
	struct store *st = sg->st;
	sqlite3 *db = store_db(st);
	sqlite3_stmt *s = NULL;
	int64_t *ids = NULL, *nids;
	size_t n = 0, cap = 0, i;
	int rc, r;

	if (sqlite3_prepare_v2(db, scan[outcomes], -1, &s, NULL) != SQLITE_OK)
		return erase_dberr(st, "prepare", err);
	sqlite3_bind_text(s, 1, sg->partner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const struct erase_staged *hit = NULL;

		if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
			if (sqlite3_column_bytes(s, 1) == TOKEN_LEN)
				hit = erase_stager_find(sg, TOKEN_KIND_EMAIL, sqlite3_column_blob(s, 1));
		} else if (sqlite3_column_bytes(s, 2) == TOKEN_LEN) {
			hit = erase_stager_find(sg, TOKEN_KIND_PHONE, sqlite3_column_blob(s, 2));
		}
		if (hit == NULL || sqlite3_column_int64(s, 3) > hit->upto)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nids = realloc(ids, cap * sizeof(*ids))) == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory erasing");
				goto out;
			}
			ids = nids;
		}
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE) {
		r = erase_dberr(st, outcomes ? "erase outcomes" : "erase records", err);
		goto out;
	}
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(db, del[outcomes], -1, &s, NULL) != SQLITE_OK) {
		s = NULL;
		r = erase_dberr(st, "prepare", err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(s, 1, ids[i]);
		if (sqlite3_step(s) != SQLITE_DONE) {
			r = erase_dberr(st, outcomes ? "erase outcomes" : "erase records", err);
			goto out;
		}
		*erased += (uint64_t)sqlite3_changes(db);
		sqlite3_reset(s);
	}
	r = 0;
out:
	sqlite3_finalize(s);
	free(ids);
	return r;
}

int
erase_apply(struct erase_stager *sg, uint64_t *erased, struct cg_err *err)
{
	/*
	 * A staged token is a user's key (join.h).  The user's outcomes
	 * (outcome batches, store.h) go by the same rule as its records, dated
	 * by the consent they were sent under.  Each row is probed in the
	 * stager's own table.
	 */
	int r;

	*erased = 0;
	if ((r = erase_stage_schema(sg->st, err)) != 0 || (r = erase_stager_tombstones(sg, err)) != 0 ||
	    (r = erase_stager_fill(sg, err)) != 0 || (r = erase_rows(sg, 0, erased, err)) != 0 ||
	    (r = erase_rows(sg, 1, erased, err)) != 0)
		return r;
	/* and from audiences and experiments, so that no pending delivery holds the user (audience.h) */
	if ((r = audience_erase_staged(sg->st, sg->partner, err)) != 0)
		return r;
	if (sqlite3_exec(store_db(sg->st), "DELETE FROM temp.erase_pending", NULL, NULL, NULL) != SQLITE_OK)
		return erase_dberr(sg->st, "clear the staging table", err);
	/* applied: what is staged from now on is a new set */
	sodium_memzero(sg->v, sg->n * sizeof(*sg->v));
	sg->n = 0;
	if (sg->slot != NULL)
		memset(sg->slot, 0, (sg->smask + 1) * sizeof(*sg->slot));
	return 0;
}

struct erase_check {
	struct store *st;
	sqlite3_stmt *get;
	unsigned char sub[32];               /* the tombstone subkey, derived once */
	const struct keyfile_key *storage;
	char partner[65];
};

int
erase_check_open(struct store *st, const struct keyfile_key *storage, const char *partner, struct erase_check **out,
    struct cg_err *err)
{
	struct erase_check *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	c->st = st;
	snprintf(c->partner, sizeof(c->partner), "%s", partner);
	c->storage = storage;
	erase_subkey(storage, c->sub);
	if (sqlite3_prepare_v2(store_db(st), "SELECT revoked_at FROM tombstones WHERE partner = ?1 AND key = ?2",
	    -1, &c->get, NULL) != SQLITE_OK) {
		erase_check_close(c);
		return erase_dberr(st, "prepare", err);
	}
	*out = c;
	return 0;
}

void
erase_check_close(struct erase_check *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->get);
	sodium_memzero(c->sub, sizeof(c->sub));
	free(c);
}

int
erase_check_keys(struct erase_check *c, const struct token *keys, const int64_t *consent_at, size_t n,
    unsigned char *revoked, struct cg_err *err)
{
	unsigned char (*tomb)[32];
	size_t i;
	int rc, r;

	memset(revoked, 0, n);
	if (n == 0)
		return 0;
	if ((tomb = malloc(n * sizeof(*tomb))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory checking tombstones");
	if ((r = erase_keys(c->storage, c->sub, keys, n, tomb, err)) != 0)
		goto out;
	sqlite3_bind_text(c->get, 1, c->partner, -1, SQLITE_STATIC);
	for (i = 0; i < n && r == 0; i++) {
		sqlite3_bind_blob(c->get, 2, tomb[i], sizeof(tomb[i]), SQLITE_STATIC);
		rc = sqlite3_step(c->get);
		if (rc == SQLITE_ROW)
			revoked[i] = consent_at[i] <= sqlite3_column_int64(c->get, 0);
		else if (rc != SQLITE_DONE)
			r = erase_dberr(c->st, "read tombstones", err);
		sqlite3_reset(c->get);
	}
out:
	sodium_memzero(tomb, n * sizeof(*tomb));
	free(tomb);
	return r;
}

int
erase_expired(struct store *st, const char *partner, int64_t before, uint64_t *erased, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	static const char *const sql[2] = {
		"DELETE FROM records WHERE partner = ?1 AND consent_at < ?2",
		"DELETE FROM outcomes WHERE partner = ?1 AND consent_at < ?2",   /* a user's outcomes age with it */
	};
	size_t i;

	*erased = 0;
	for (i = 0; i < 2 && r == 0; i++) {
		if (sqlite3_prepare_v2(store_db(st), sql[i], -1, &s, NULL) != SQLITE_OK)
			return erase_dberr(st, "prepare", err);
		sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, before);
		if (sqlite3_step(s) != SQLITE_DONE)
			r = erase_dberr(st, "erase expired records", err);
		else
			*erased += (uint64_t)sqlite3_changes(store_db(st));
		sqlite3_finalize(s);
		s = NULL;
	}
	/* users left with no record leave every audience and experiment too (audience.h) */
	if (r == 0 && *erased > 0)
		r = audience_erase_orphans(st, partner, err);
	return r;
}

int
erase_any(struct store *st, const char *partner, int *any, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	*any = 0;
	if (sqlite3_prepare_v2(store_db(st), "SELECT EXISTS(SELECT 1 FROM tombstones WHERE partner = ?1)", -1, &s,
	    NULL) != SQLITE_OK)
		return erase_dberr(st, "prepare", err);
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*any = sqlite3_column_int(s, 0);
	else
		r = erase_dberr(st, "read tombstones", err);
	sqlite3_finalize(s);
	return r;
}

int
erase_purge(struct store *st, struct audit *a, const struct policy *pol, int64_t now, int quiet,
    uint64_t *erased, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	size_t i;
	int r;

	*erased = 0;
	for (i = 0; i < pol->npartners; i++) {
		const struct policy_partner *pp = &pol->partners[i];
		uint64_t n = 0;

		if (pp->retention_days == 0)
			continue;
		if ((r = store_begin(st, err)) != 0)
			return r;
		if ((r = erase_expired(st, pp->id, now - (int64_t)pp->retention_days * 86400, &n, err)) != 0)
			goto fail;
		if (quiet && n == 0) {
			store_rollback(st);
			continue;
		}
		crossgate__audit_event__init(&ev);
		ev.actor = (char *)"gateway";
		ev.action = (char *)"purge";
		ev.outcome = (char *)"ok";
		ev.partner_id = pp->id;
		ev.policy_hash.data = (uint8_t *)pol->hash;
		ev.policy_hash.len = sizeof(pol->hash);
		crossgate__audit_event__counts_entry__init(&ce);
		ce.key = (char *)"erased";
		ce.value = n;
		ev.counts = &cep;
		ev.n_counts = 1;
		if ((r = audit_append(a, &ev, err)) != 0)
			goto fail;
		if ((r = store_commit(st, err)) != 0)
			goto fail;
		audit_txn_end(a, 1);
		*erased += n;
	}
	/* The erased pages are still in the WAL until it is checkpointed and truncated. */
	return *erased > 0 || !quiet ? store_checkpoint(st, err) : 0;
fail:
	store_rollback(st);
	audit_txn_end(a, 0);
	return r;
}

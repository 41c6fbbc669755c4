/* state.c - see state.h */
#define _GNU_SOURCE   /* qsort_r: the user order compares ids held by the cache */
#include "agent/state.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

/* One user of the cached partner: what the state remembers, and what changed. */
struct agent_state_user {
	size_t uid_off;                      /* in the cache's id arena */
	uint32_t uid_len;
	uint8_t ntok, has_consent, in_db;    /* in_db: its tokens are rows of `sent` */
	uint8_t dirty_tok, dirty_consent;
	uint32_t bits;
	int64_t at;
	struct token tok[2];                 /* by kind, as the table's order */
};

struct agent_state_cache {
	char *partner;
	struct agent_state_user *u;
	size_t n, cap;
	uint32_t *slot;                      /* user index + 1; 0 empty */
	size_t mask;
	char *ids;
	size_t ids_len, ids_cap;
	unsigned char key[crypto_shorthash_KEYBYTES];
};

struct agent_state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *del, *put, *get, *cget, *cput, *users;
	struct agent_state_cache *cache;     /* agent_state_cache(): one partner's users in memory */
};

static int
agent_state_dberr(struct agent_state *s, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "agent state %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/*
 * The cache.  A pack looks up every user of its file, and its first pack
 * inserts every one: one lookup and three inserts a user, each at a random
 * place in B-trees far larger than SQLite's page cache (a pack of 10M users
 * took 12 minutes, 11 of them here).  So a pack reads its partner's users
 * once, in key order, into a table in memory; lookups are served from it,
 * changes are kept in it, and agent_state_commit() writes the changed users
 * in user id order.  Tokens and user ids are wiped when it goes.
 */
static void
agent_state_cache_free(struct agent_state_cache *c)
{
	if (c == NULL)
		return;
	if (c->u != NULL)
		sodium_memzero(c->u, c->cap * sizeof(*c->u));
	if (c->ids != NULL)
		sodium_memzero(c->ids, c->ids_cap);
	sodium_memzero(c->key, sizeof(c->key));
	free(c->u);
	free(c->ids);
	free(c->slot);
	free(c->partner);
	free(c);
}

/*
 * The slot of `uid`: where it is (and *found its user), or the empty slot
 * where it goes (*found NULL).  The table is never full: it has twice the
 * slots of the users' capacity.
 */
static size_t
agent_state_cache_slot(const struct agent_state_cache *c, const char *uid, size_t len,
    struct agent_state_user **found)
{
	uint64_t h;
	size_t sl;

	crypto_shorthash((unsigned char *)&h, (const unsigned char *)uid, len, c->key);
	for (sl = (size_t)h & c->mask; c->slot[sl] != 0; sl = (sl + 1) & c->mask) {
		struct agent_state_user *u = &c->u[c->slot[sl] - 1];
		if (found != NULL && u->uid_len == len && memcmp(c->ids + u->uid_off, uid, len) == 0) {
			*found = u;
			return sl;
		}
	}
	if (found != NULL)
		*found = NULL;
	return sl;
}

static int
agent_state_cache_grow(struct agent_state_cache *c)
{
	size_t ncap = c->cap ? c->cap * 2 : 1024, nslots = ncap * 2, i;
	struct agent_state_user *nu;
	uint32_t *ns;

	if (ncap >= UINT32_MAX / 2)
		return CG_ERR_LIMIT;
	if ((nu = malloc(ncap * sizeof(*nu))) == NULL || (ns = calloc(nslots, sizeof(*ns))) == NULL) {
		free(nu);
		return CG_ERR_NOMEM;
	}
	if (c->n > 0)
		memcpy(nu, c->u, c->n * sizeof(*nu));
	if (c->u != NULL)
		sodium_memzero(c->u, c->cap * sizeof(*c->u));
	free(c->u);
	free(c->slot);
	c->u = nu;
	c->cap = ncap;
	c->slot = ns;
	c->mask = nslots - 1;
	for (i = 0; i < c->n; i++)
		c->slot[agent_state_cache_slot(c, c->ids + c->u[i].uid_off, c->u[i].uid_len, NULL)] = (uint32_t)i + 1;
	return 0;
}

/* The user `uid`, added (empty) if absent and `add`; NULL if absent and not added, or out of memory. */
static struct agent_state_user *
agent_state_cache_find(struct agent_state_cache *c, const char *uid, size_t len, int add, int *nomem)
{
	struct agent_state_user *u;
	size_t sl = 0;

	*nomem = 0;
	if (c->cap > 0) {
		sl = agent_state_cache_slot(c, uid, len, &u);
		if (u != NULL)
			return u;
	}
	if (!add)
		return NULL;
	if (len > UINT32_MAX)
		goto nomem;
	if (c->n == c->cap) {
		if (agent_state_cache_grow(c) != 0)
			goto nomem;
		sl = agent_state_cache_slot(c, uid, len, NULL);   /* the table was rebuilt */
	}
	if (c->ids_len + len > c->ids_cap) {
		size_t ncap = c->ids_cap ? c->ids_cap : 65536;
		char *ni;
		while (ncap < c->ids_len + len)
			ncap *= 2;
		if ((ni = malloc(ncap)) == NULL)
			goto nomem;
		if (c->ids_len > 0)
			memcpy(ni, c->ids, c->ids_len);
		if (c->ids != NULL)
			sodium_memzero(c->ids, c->ids_cap);
		free(c->ids);
		c->ids = ni;
		c->ids_cap = ncap;
	}
	u = &c->u[c->n];
	memset(u, 0, sizeof(*u));
	u->uid_off = c->ids_len;
	u->uid_len = (uint32_t)len;
	memcpy(c->ids + c->ids_len, uid, len);
	c->ids_len += len;
	c->slot[sl] = (uint32_t)++c->n;
	return u;
nomem:
	*nomem = 1;
	return NULL;
}

/* The cache serves calls about its partner only. */
static struct agent_state_cache *
agent_state_cached(struct agent_state *s, const char *partner)
{
	return s->cache != NULL && strcmp(s->cache->partner, partner) == 0 ? s->cache : NULL;
}

int
agent_state_cache(struct agent_state *s, const char *partner, struct cg_err *err)
{
	static const char *const sql[2] = {
		"SELECT user_id, bits, at FROM sent_consent WHERE partner = ?1 ORDER BY user_id",
		"SELECT user_id, kind, token FROM sent WHERE partner = ?1 ORDER BY user_id, kind"
	};
	struct agent_state_cache *c;
	sqlite3_stmt *q = NULL;
	int rc, r = 0, nomem, t;

	if (s->cache != NULL)
		return cg_err_set(err, CG_ERR_INTERNAL, "agent state %s: already cached", s->path);
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->partner = strdup(partner)) == NULL) {
		free(c);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	crypto_shorthash_keygen(c->key);
	/*
	 * Each table in its own key order, so each is one sequential read.  The
	 * consents first: a user may have a consent remembered and no tokens
	 * (its tokens forgotten); a later put must still find that consent.
	 */
	for (t = 0; t < 2; t++) {
		if (sqlite3_prepare_v2(s->db, sql[t], -1, &q, NULL) != SQLITE_OK) {
			r = agent_state_dberr(s, "read", err);
			goto out;
		}
		sqlite3_bind_text(q, 1, partner, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			struct agent_state_user *u = agent_state_cache_find(c, (const char *)sqlite3_column_text(q, 0),
			    (size_t)sqlite3_column_bytes(q, 0), 1, &nomem);
			if (u == NULL) {
				r = cg_err_set(err, CG_ERR_NOMEM, "out of memory reading agent state %s", s->path);
				goto out;
			}
			if (t == 0) {
				u->has_consent = 1;
				u->bits = (uint32_t)sqlite3_column_int64(q, 1);
				u->at = sqlite3_column_int64(q, 2);
				continue;
			}
			u->in_db = 1;                /* its rows go before new ones are written, even a malformed one */
			if (sqlite3_column_bytes(q, 2) != TOKEN_LEN || u->ntok == 2)
				continue;            /* as agent_state_lookup: a malformed token is not remembered */
			u->tok[u->ntok].kind = (uint32_t)sqlite3_column_int(q, 1);
			memcpy(u->tok[u->ntok].value, sqlite3_column_blob(q, 2), TOKEN_LEN);
			u->ntok++;
		}
		if (rc != SQLITE_DONE) {
			r = agent_state_dberr(s, "read", err);
			goto out;
		}
		sqlite3_finalize(q);
		q = NULL;
	}
	s->cache = c;
	c = NULL;
out:
	sqlite3_finalize(q);
	agent_state_cache_free(c);
	return r;
}

static int
agent_state_uid_cmp(const void *a, const void *b, void *arg)
{
	const struct agent_state_cache *c = arg;
	const struct agent_state_user *x = &c->u[*(const uint32_t *)a], *y = &c->u[*(const uint32_t *)b];
	size_t n = x->uid_len < y->uid_len ? x->uid_len : y->uid_len;
	int d = memcmp(c->ids + x->uid_off, c->ids + y->uid_off, n);

	return d != 0 ? d : (x->uid_len > y->uid_len) - (x->uid_len < y->uid_len);
}

static int agent_state_sql_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    const struct token *tokens, size_t n, int forget, struct cg_err *err);
static int agent_state_sql_consent_put(struct agent_state *s, const char *partner, const char *user_id,
    size_t user_id_len, uint32_t bits, int64_t at, struct cg_err *err);

/*
 * Write the changed users, in user id order: the B-trees are then filled
 * from left to right.  When most of the table is rewritten (a first pack),
 * the token index is dropped and built again after, from sorted keys.
 */
static int
agent_state_cache_flush(struct agent_state *s, struct cg_err *err)
{
	struct agent_state_cache *c = s->cache;
	uint32_t *order = NULL;
	size_t i, nd = 0, ntok = 0, indb = 0;
	int r = 0, rebuild;

	if (c == NULL)
		return 0;
	for (i = 0; i < c->n; i++) {
		nd += c->u[i].dirty_tok || c->u[i].dirty_consent;
		ntok += c->u[i].dirty_tok;
		indb += c->u[i].in_db;
	}
	if (nd == 0)
		return 0;
	if ((order = malloc(nd * sizeof(*order))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (i = 0, nd = 0; i < c->n; i++)
		if (c->u[i].dirty_tok || c->u[i].dirty_consent)
			order[nd++] = (uint32_t)i;
	qsort_r(order, nd, sizeof(*order), agent_state_uid_cmp, c);
	rebuild = ntok >= 65536 && ntok >= 2 * indb;
	if (rebuild && sqlite3_exec(s->db, "DROP INDEX IF EXISTS sent_token", NULL, NULL, NULL) != SQLITE_OK) {
		r = agent_state_dberr(s, "drop the token index", err);
		goto out;
	}
	for (i = 0; i < nd && r == 0; i++) {
		struct agent_state_user *u = &c->u[order[i]];
		const char *uid = c->ids + u->uid_off;
		if (u->dirty_tok) {
			r = agent_state_sql_put(s, c->partner, uid, u->uid_len, u->tok, u->ntok, u->in_db, err);
			u->in_db = u->ntok > 0;
			u->dirty_tok = 0;
		}
		if (r == 0 && u->dirty_consent) {
			r = agent_state_sql_consent_put(s, c->partner, uid, u->uid_len, u->bits, u->at, err);
			u->dirty_consent = 0;
		}
	}
	if (r == 0 && rebuild && sqlite3_exec(s->db, "CREATE INDEX IF NOT EXISTS sent_token ON sent(partner, kind, token)",
	    NULL, NULL, NULL) != SQLITE_OK)
		r = agent_state_dberr(s, "build the token index", err);
out:
	free(order);
	return r;
}

int
agent_state_open(const char *path, struct agent_state **out, struct cg_err *err)
{
	struct agent_state *s;
	int fd, r, on = 1;

	*out = NULL;
	/* Created 0600 before SQLite opens it: it links user ids to tokens. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return cg_err_set(err, CG_ERR_IO, "cannot open agent state %s", path);
	close(fd);
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		r = cg_err_set(err, CG_ERR_DB, "cannot open agent state %s", path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 10000);
	if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK ||
	    sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA secure_delete=ON; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"
	    "CREATE TABLE IF NOT EXISTS sent("
	    "  partner TEXT NOT NULL, user_id TEXT NOT NULL, kind INTEGER NOT NULL, token BLOB NOT NULL,"
	    "  PRIMARY KEY (partner, user_id, kind)) WITHOUT ROWID, STRICT;"
	    "CREATE TABLE IF NOT EXISTS sent_consent("
	    "  partner TEXT NOT NULL, user_id TEXT NOT NULL, bits INTEGER NOT NULL, at INTEGER NOT NULL,"
	    "  PRIMARY KEY (partner, user_id)) WITHOUT ROWID, STRICT;"
	    "CREATE INDEX IF NOT EXISTS sent_token ON sent(partner, kind, token);", NULL, NULL, NULL) != SQLITE_OK ||
	    /* join.h: a user without an email is keyed by its phone; one with an email never by its phone */
	    sqlite3_prepare_v2(s->db, "SELECT s.user_id FROM sent s WHERE s.partner = ?1 AND s.kind = ?2 AND s.token = ?3 "
	    "AND (?2 = 1 OR NOT EXISTS (SELECT 1 FROM sent e WHERE e.partner = s.partner AND e.user_id = s.user_id "
	    "AND e.kind = 1)) ORDER BY s.user_id", -1, &s->users, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT s.kind, s.token, c.bits, c.at FROM sent s LEFT JOIN sent_consent c "
	    "ON c.partner = s.partner AND c.user_id = s.user_id WHERE s.partner = ?1 AND s.user_id = ?2 ORDER BY s.kind",
	    -1, &s->cget, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO sent_consent(partner, user_id, bits, at) VALUES (?1, ?2, ?3, ?4) "
	    "ON CONFLICT(partner, user_id) DO UPDATE SET bits = excluded.bits, at = excluded.at", -1, &s->cput, NULL)
	    != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM sent WHERE partner = ?1 AND user_id = ?2", -1, &s->del, NULL)
	    != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO sent(partner, user_id, kind, token) VALUES (?1, ?2, ?3, ?4)", -1,
	    &s->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT kind, token FROM sent WHERE partner = ?1 AND user_id = ?2 "
	    "ORDER BY kind", -1, &s->get, NULL) != SQLITE_OK) {
		r = agent_state_dberr(s, "open", err);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	agent_state_close(s);
	return r;
}

void
agent_state_close(struct agent_state *s)
{
	if (s == NULL)
		return;
	agent_state_cache_free(s->cache);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->put);
	sqlite3_finalize(s->get);
	sqlite3_finalize(s->cget);
	sqlite3_finalize(s->users);
	sqlite3_finalize(s->cput);
	if (s->db != NULL)
		sqlite3_close(s->db);
	free(s->path);
	free(s);
}

int
agent_state_begin(struct agent_state *s, struct cg_err *err)
{
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return agent_state_dberr(s, "begin", err);
	return 0;
}

int
agent_state_commit(struct agent_state *s, struct cg_err *err)
{
	int r;

	if ((r = agent_state_cache_flush(s, err)) != 0)
		return r;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return agent_state_dberr(s, "commit", err);
	return 0;
}

static int
agent_state_sql_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    const struct token *tokens, size_t n, int forget, struct cg_err *err)
{
	size_t i;

	if (forget) {
		sqlite3_bind_text(s->del, 1, partner, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->del, 2, user_id, (int)user_id_len, SQLITE_STATIC);
		if (sqlite3_step(s->del) != SQLITE_DONE) {
			sqlite3_reset(s->del);
			return agent_state_dberr(s, "forget user", err);
		}
		sqlite3_reset(s->del);
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(s->put, 1, partner, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->put, 2, user_id, (int)user_id_len, SQLITE_STATIC);
		sqlite3_bind_int(s->put, 3, (int)tokens[i].kind);
		sqlite3_bind_blob(s->put, 4, tokens[i].value, TOKEN_LEN, SQLITE_STATIC);
		if (sqlite3_step(s->put) != SQLITE_DONE) {
			sqlite3_reset(s->put);
			return agent_state_dberr(s, "remember user", err);
		}
		sqlite3_reset(s->put);
	}
	return 0;
}

/* Tokens in the table's order (by kind), at most 2. */
static void
agent_state_user_set(struct agent_state_user *u, const struct token *tokens, size_t n)
{
	size_t i;

	u->ntok = 0;
	for (i = 0; i < n && i < 2; i++)
		u->tok[u->ntok++] = tokens[i];
	if (u->ntok == 2 && u->tok[0].kind > u->tok[1].kind) {
		struct token t = u->tok[0];
		u->tok[0] = u->tok[1];
		u->tok[1] = t;
		sodium_memzero(&t, sizeof(t));
	}
	u->dirty_tok = 1;
}

int
agent_state_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    const struct token *tokens, size_t n, struct cg_err *err)
{
	struct agent_state_cache *c = agent_state_cached(s, partner);
	struct agent_state_user *u;
	int nomem;

	if (c == NULL)
		return agent_state_sql_put(s, partner, user_id, user_id_len, tokens, n, 1, err);
	if ((u = agent_state_cache_find(c, user_id, user_id_len, 1, &nomem)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	agent_state_user_set(u, tokens, n);
	return 0;
}

/* From the cache: *n = 0 and *found = 0 for a user without tokens, as the SQL lookup's join. */
static void
agent_state_cache_get(struct agent_state_cache *c, const char *user_id, size_t user_id_len, struct token out[2],
    size_t *n, uint32_t *bits, int64_t *at, int *found)
{
	int nomem;
	const struct agent_state_user *u = agent_state_cache_find(c, user_id, user_id_len, 0, &nomem);
	size_t i;

	*n = 0;
	if (u == NULL || u->ntok == 0)
		return;
	for (i = 0; i < u->ntok; i++)
		out[i] = u->tok[i];
	*n = u->ntok;
	if (u->has_consent && found != NULL) {
		*bits = u->bits;
		*at = u->at;
		*found = 1;
	}
}

int
agent_state_get(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    struct token out[2], size_t *n, struct cg_err *err)
{
	struct agent_state_cache *c = agent_state_cached(s, partner);
	int rc;

	*n = 0;
	if (c != NULL) {
		agent_state_cache_get(c, user_id, user_id_len, out, n, NULL, NULL, NULL);
		return 0;
	}
	sqlite3_bind_text(s->get, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->get, 2, user_id, (int)user_id_len, SQLITE_STATIC);
	while ((rc = sqlite3_step(s->get)) == SQLITE_ROW && *n < 2) {
		if (sqlite3_column_bytes(s->get, 1) != TOKEN_LEN)
			continue;
		out[*n].kind = (uint32_t)sqlite3_column_int(s->get, 0);
		memcpy(out[*n].value, sqlite3_column_blob(s->get, 1), TOKEN_LEN);
		(*n)++;
	}
	sqlite3_reset(s->get);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return agent_state_dberr(s, "look up user", err);
	return 0;
}

int
agent_state_lookup(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    struct token out[2], size_t *n, uint32_t *bits, int64_t *at, int *found, struct cg_err *err)
{
	struct agent_state_cache *c = agent_state_cached(s, partner);
	int rc;

	*n = 0;
	*found = 0;
	*bits = 0;
	*at = 0;
	if (c != NULL) {
		agent_state_cache_get(c, user_id, user_id_len, out, n, bits, at, found);
		return 0;
	}
	sqlite3_bind_text(s->cget, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->cget, 2, user_id, (int)user_id_len, SQLITE_STATIC);
	while ((rc = sqlite3_step(s->cget)) == SQLITE_ROW && *n < 2) {
		if (sqlite3_column_bytes(s->cget, 1) != TOKEN_LEN)
			continue;
		out[*n].kind = (uint32_t)sqlite3_column_int(s->cget, 0);
		memcpy(out[*n].value, sqlite3_column_blob(s->cget, 1), TOKEN_LEN);
		(*n)++;
		if (sqlite3_column_type(s->cget, 2) != SQLITE_NULL) {
			*bits = (uint32_t)sqlite3_column_int64(s->cget, 2);
			*at = sqlite3_column_int64(s->cget, 3);
			*found = 1;
		}
	}
	sqlite3_reset(s->cget);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return agent_state_dberr(s, "look up user", err);
	return 0;
}

int
agent_state_consent_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    uint32_t bits, int64_t at, struct cg_err *err)
{
	struct agent_state_cache *c = agent_state_cached(s, partner);
	struct agent_state_user *u;
	int nomem;

	if (c == NULL)
		return agent_state_sql_consent_put(s, partner, user_id, user_id_len, bits, at, err);
	if ((u = agent_state_cache_find(c, user_id, user_id_len, 1, &nomem)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	u->has_consent = 1;
	u->bits = bits;
	u->at = at;
	u->dirty_consent = 1;
	return 0;
}

static int
agent_state_sql_consent_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    uint32_t bits, int64_t at, struct cg_err *err)
{
	int rc;

	sqlite3_bind_text(s->cput, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->cput, 2, user_id, (int)user_id_len, SQLITE_STATIC);
	sqlite3_bind_int64(s->cput, 3, (sqlite3_int64)bits);
	sqlite3_bind_int64(s->cput, 4, at);
	rc = sqlite3_step(s->cput);
	sqlite3_reset(s->cput);
	if (rc != SQLITE_DONE)
		return agent_state_dberr(s, "remember consent", err);
	return 0;
}

int
agent_state_users_of(struct agent_state *s, const char *partner, const struct token *t, agent_state_user_fn fn,
    void *ctx, struct cg_err *err)
{
	int rc, r = 0;

	/* the walk reads the tables: what the cache changed goes there first */
	if ((r = agent_state_cache_flush(s, err)) != 0)
		return r;
	sqlite3_bind_text(s->users, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_int(s->users, 2, (int)t->kind);
	sqlite3_bind_blob(s->users, 3, t->value, TOKEN_LEN, SQLITE_STATIC);
	while ((rc = sqlite3_step(s->users)) == SQLITE_ROW && r == 0)
		r = fn(ctx, (const char *)sqlite3_column_text(s->users, 0), (size_t)sqlite3_column_bytes(s->users, 0), err);
	sqlite3_reset(s->users);
	if (r != 0)
		return r;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return agent_state_dberr(s, "look up a token", err);
	return 0;
}

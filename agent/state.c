/* state.c - see state.h */
#include "agent/state.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

struct agent_state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *del, *put, *get, *cget, *cput, *users;
};

static int
agent_state_dberr(struct agent_state *s, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "agent state %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
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
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return agent_state_dberr(s, "commit", err);
	return 0;
}

int
agent_state_put(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    const struct token *tokens, size_t n, struct cg_err *err)
{
	size_t i;

	sqlite3_bind_text(s->del, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->del, 2, user_id, (int)user_id_len, SQLITE_STATIC);
	if (sqlite3_step(s->del) != SQLITE_DONE) {
		sqlite3_reset(s->del);
		return agent_state_dberr(s, "forget user", err);
	}
	sqlite3_reset(s->del);
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

int
agent_state_get(struct agent_state *s, const char *partner, const char *user_id, size_t user_id_len,
    struct token out[2], size_t *n, struct cg_err *err)
{
	int rc;

	*n = 0;
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
	int rc;

	*n = 0;
	*found = 0;
	*bits = 0;
	*at = 0;
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

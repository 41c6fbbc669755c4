/*
 * audit_log.h - the fixture of the audit log's unit tests (test_audit.c,
 * test_audit_tree.c): keys made at start, a temporary directory, stores
 * holding logs of gateway-shaped events, and the stored log as a verifier
 * reads it.  Each test program includes it once; audit_fixture_init() makes
 * the keys and the directory, audit_fixture_done() frees and removes them.
 */
#ifndef CG_TEST_AUDIT_LOG_H
#define CG_TEST_AUDIT_LOG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/merkle.h"
#include "audit/note.h"
#include "audit/audit.h"
#include "store/store.h"
#include "proto/audit.pb-c.h"
#include "tests/unit/cgtest.h"


#define MAX_EVENTS 64

static char tmpdir[64];   /* audit_fixture_init: /tmp/cg-NAME-XXXXXX */
static struct keyfile_key *gw_key, *gw_pub, *other_key, *other_pub;

/* The stored log, as a verifier reads it. */
struct stored_log {
	size_t n;
	uint64_t seq[MAX_EVENTS];
	unsigned char *event[MAX_EVENTS];
	size_t event_len[MAX_EVENTS];
	unsigned char leaf_col[MAX_EVENTS][MERKLE_HASH_LEN];
	unsigned char leaf[MAX_EVENTS][MERKLE_HASH_LEN];   /* recomputed from the event bytes */
};

static inline void
stored_log_free(struct stored_log *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->event[i]);
	l->n = 0;
}

static inline int
stored_log_load(struct store *st, struct stored_log *l)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(l, 0, sizeof(*l));
	if (sqlite3_prepare_v2(store_db(st), "SELECT seq, event, leaf FROM audit_events ORDER BY seq", -1, &s,
	    NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && l->n < MAX_EVENTS) {
		size_t len = (size_t)sqlite3_column_bytes(s, 1);

		l->seq[l->n] = (uint64_t)sqlite3_column_int64(s, 0);
		l->event[l->n] = malloc(len ? len : 1);
		if (len)
			memcpy(l->event[l->n], sqlite3_column_blob(s, 1), len);
		l->event_len[l->n] = len;
		if (sqlite3_column_bytes(s, 2) == MERKLE_HASH_LEN)
			memcpy(l->leaf_col[l->n], sqlite3_column_blob(s, 2), MERKLE_HASH_LEN);
		merkle_leaf_hash(l->event[l->n], len, l->leaf[l->n]);
		l->n++;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static inline void
tmp_path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static inline struct store *
fresh_store(const char *name, char *path, size_t path_size)
{
	struct store *st = NULL;
	struct cg_err err = { 0 };
	char p[600];

	tmp_path(path, path_size, name);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	if (st == NULL)
		fprintf(stderr, "store_open: %s\n", err.msg);
	return st;
}

static inline int
exec_sql(struct store *st, const char *sql)
{
	int rc = sqlite3_exec(store_db(st), sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(store_db(st)));
	return rc;
}

static inline long long
query_int(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Log an event shaped like the gateway's: actor, action, outcome and a few counts. */
static inline int
log_event(struct audit *a, int i, struct cg_err *err)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	Crossgate__AuditEvent__CountsEntry c0 = CROSSGATE__AUDIT_EVENT__COUNTS_ENTRY__INIT;
	Crossgate__AuditEvent__CountsEntry c1 = CROSSGATE__AUDIT_EVENT__COUNTS_ENTRY__INIT;
	Crossgate__AuditEvent__CountsEntry *counts[2] = { &c0, &c1 };
	char actor[32];

	snprintf(actor, sizeof(actor), "partner-%d", i);
	ev.actor = actor;
	ev.action = i % 2 ? "ingest-rejected" : "ingest";
	ev.outcome = i % 2 ? "rejected" : "ok";
	c0.key = "records";
	c0.value = (uint64_t)(100 + i);
	c1.key = "rejected";
	c1.value = (uint64_t)i;
	ev.n_counts = 2;
	ev.counts = counts;
	return audit_log(a, &ev, err);
}

/* A store holding a log of n events, and its audit (both NULL on failure). */
static inline void
make_log(const char *name, int n, char *path, size_t path_size, struct store **st, struct audit **a)
{
	struct cg_err err = { 0 };
	int i;

	*a = NULL;
	if ((*st = fresh_store(name, path, path_size)) == NULL)
		return;
	CHECK_EQ_INT(audit_open(*st, gw_key, a, &err), 0);
	if (*a == NULL) {
		store_close(*st);
		*st = NULL;
		return;
	}
	for (i = 0; i < n; i++)
		CHECK_EQ_INT(log_event(*a, i, &err), 0);
	CHECK_EQ_INT(audit_size(*a), n);
}

/* Every stored checkpoint is a C2SP signed note by the gateway key over the tree of the events below it. */
static inline void
check_checkpoints(struct store *st, size_t expect)
{
	struct stored_log l;
	sqlite3_stmt *s = NULL;
	char origin[AUDIT_ORIGIN_MAX];
	size_t seen = 0;

	audit_origin(gw_pub->id, origin);
	CHECK_EQ_INT(stored_log_load(st, &l), 0);
	CHECK_EQ_INT(sqlite3_prepare_v2(store_db(st), "SELECT size, note FROM audit_checkpoints ORDER BY size", -1,
	    &s, NULL), SQLITE_OK);
	while (s != NULL && sqlite3_step(s) == SQLITE_ROW) {
		struct cg_err err = { 0 };
		struct checkpoint cp;
		unsigned char root[MERKLE_HASH_LEN];
		const char *note = (const char *)sqlite3_column_text(s, 1);
		size_t note_len = (size_t)sqlite3_column_bytes(s, 1), text_len = 0;
		uint64_t size = (uint64_t)sqlite3_column_int64(s, 0);

		seen++;
		CHECK_EQ_INT(size, seen);
		CHECK_EQ_INT(note_verify(note, note_len, origin, gw_pub->pub, &text_len, &err), 0);
		CHECK_EQ_INT(checkpoint_parse(note, text_len, &cp, &err), 0);
		CHECK_STR(cp.origin, origin);
		CHECK_EQ_INT(cp.size, size);
		if (size <= l.n) {
			merkle_root((const unsigned char (*)[MERKLE_HASH_LEN])l.leaf, size, root);
			CHECK(memcmp(cp.root, root, MERKLE_HASH_LEN) == 0);
		} else {
			CHECK(size <= l.n);
		}
		/* Signed by the gateway alone: no other key verifies it. */
		memset(&err, 0, sizeof(err));
		CHECK(note_verify(note, note_len, origin, other_pub->pub, &text_len, &err) != 0);
	}
	sqlite3_finalize(s);
	CHECK_EQ_INT(seen, expect);
	stored_log_free(&l);
}


/* An event as audit_import takes it from a fetch (not erased). */
static inline int
import_one(struct store *dst, uint64_t seq, const unsigned char *event, size_t len, const char *checkpoint,
    struct cg_err *err)
{
	struct audit_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.seq = seq;
	rec.event = event;
	rec.len = len;
	rec.checkpoint = checkpoint;
	return audit_import(dst, &rec, err);
}

/* Keys and the temporary directory; 0, or -1 (the checks say why) if there are none. */
static inline int
audit_fixture_init(const char *name)
{
	struct cg_err err = { 0 };

	if (sodium_init() < 0)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cg-%s-XXXXXX", name);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &gw_key, &err), 0);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &other_key, &err), 0);
	if (gw_key == NULL || other_key == NULL)
		return -1;
	CHECK_EQ_INT(keyfile_public_of(gw_key, &gw_pub, &err), 0);
	CHECK_EQ_INT(keyfile_public_of(other_key, &other_pub, &err), 0);
	if (gw_pub == NULL || other_pub == NULL)
		return -1;
	CHECK_EQ_INT(gw_pub->type, KEYFILE_ED25519_PUBLIC);
	return 0;
}

static inline void
audit_fixture_done(void)
{
	char cmd[128];

	keyfile_free(gw_key);
	keyfile_free(gw_pub);
	keyfile_free(other_key);
	keyfile_free(other_pub);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

#endif

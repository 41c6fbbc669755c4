/* test_audit.c - the append-only audit log: checkpoints, rollback, reopening, tampering (fixture: audit_log.h). */
#include "tests/unit/audit_log.h"

static void
test_origin(void)
{
	char origin[AUDIT_ORIGIN_MAX], hex[2 * KEYFILE_ID_LEN + 1], want[AUDIT_ORIGIN_MAX];

	keyfile_id_hex(gw_pub->id, hex);
	snprintf(want, sizeof(want), "crossgate/gateway/%s", hex);
	audit_origin(gw_pub->id, origin);
	CHECK_STR(origin, want);
	/* Both halves of the key name the same log. */
	audit_origin(gw_key->id, origin);
	CHECK_STR(origin, want);
}

static void
test_log(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct stored_log l;
	struct cg_err err = { 0 };
	unsigned char root[MERKLE_HASH_LEN];
	char path[256];
	size_t i;

	if ((st = fresh_store("log.db", path, sizeof(path))) == NULL)
		return;

	/* An empty log verifies: no events, no checkpoints, the root of the empty tree. */
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 0);
	CHECK_EQ_INT(rep.checkpoints, 0);
	merkle_root(NULL, 0, root);
	CHECK(memcmp(rep.root, root, sizeof(root)) == 0);
	CHECK_STR(rep.latest_checkpoint, "");

	CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
	if (a == NULL) {
		store_close(st);
		return;
	}
	CHECK_EQ_INT(audit_size(a), 0);
	for (i = 0; i < 7; i++) {
		Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
		Crossgate__AuditEvent__CountsEntry c = CROSSGATE__AUDIT_EVENT__COUNTS_ENTRY__INIT;
		Crossgate__AuditEvent__CountsEntry *counts[1] = { &c };

		ev.actor = "gateway";
		ev.action = "export";
		ev.outcome = "ok";
		ev.seq = 999;   /* the log sets seq and time, whatever the caller left there */
		c.key = "exported";
		c.value = i * 10;
		ev.n_counts = 1;
		ev.counts = counts;
		CHECK_EQ_INT(audit_log(a, &ev, &err), 0);
		CHECK_EQ_INT(ev.seq, i);
		CHECK(ev.time > 1600000000);
		CHECK_EQ_INT(audit_size(a), i + 1);
		CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_events"), i + 1);
		CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_checkpoints"), i + 1);
	}

	CHECK_EQ_INT(stored_log_load(st, &l), 0);
	CHECK_EQ_INT(l.n, 7);
	for (i = 0; i < l.n; i++) {
		Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, l.event_len[i], l.event[i]);

		CHECK_EQ_INT(l.seq[i], i);
		CHECK(memcmp(l.leaf_col[i], l.leaf[i], MERKLE_HASH_LEN) == 0);
		CHECK(e != NULL);
		if (e == NULL)
			continue;
		CHECK_EQ_INT(e->seq, i);
		CHECK_STR(e->actor, "gateway");
		CHECK_STR(e->action, "export");
		CHECK_STR(e->outcome, "ok");
		CHECK_EQ_INT(e->n_counts, 1);
		if (e->n_counts == 1) {
			CHECK_STR(e->counts[0]->key, "exported");
			CHECK_EQ_INT(e->counts[0]->value, i * 10);
		}
		crossgate__audit_event__free_unpacked(e, NULL);
	}
	check_checkpoints(st, 7);

	memset(&rep, 0xff, sizeof(rep));
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 7);
	CHECK_EQ_INT(rep.checkpoints, 7);
	merkle_root((const unsigned char (*)[MERKLE_HASH_LEN])l.leaf, 7, root);
	CHECK(memcmp(rep.root, root, sizeof(root)) == 0);
	{
		char origin[AUDIT_ORIGIN_MAX], want[AUDIT_ORIGIN_MAX + 8];

		audit_origin(gw_pub->id, origin);
		snprintf(want, sizeof(want), "%s\n7\n", origin);
		CHECK(strncmp(rep.latest_checkpoint, want, strlen(want)) == 0);
		CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_checkpoints WHERE size = 7"), 1);
	}
	stored_log_free(&l);

	/* The secret half verifies as well as the public one. */
	CHECK_EQ_INT(audit_verify(st, gw_key, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 7);

	audit_free(a);
	audit_free(NULL);
	store_close(st);
}

/* An event carries what it was given and nothing more. */
static void
test_empty_event(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct stored_log l;
	struct cg_err err = { 0 };
	char path[256];
	int i;

	if ((st = fresh_store("empty.db", path, sizeof(path))) == NULL)
		return;
	CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
	if (a == NULL) {
		store_close(st);
		return;
	}
	for (i = 0; i < 3; i++) {
		Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;

		CHECK_EQ_INT(audit_log(a, &ev, &err), 0);
	}
	CHECK_EQ_INT(stored_log_load(st, &l), 0);
	CHECK_EQ_INT(l.n, 3);
	for (i = 0; i < (int)l.n; i++) {
		Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, l.event_len[i], l.event[i]);
		Crossgate__AuditEvent only = CROSSGATE__AUDIT_EVENT__INIT;
		unsigned char buf[64];
		size_t len;

		CHECK(e != NULL);
		if (e == NULL)
			continue;
		CHECK_EQ_INT(e->seq, i);
		CHECK(e->time > 1600000000);
		CHECK_STR(e->actor, "");
		CHECK_STR(e->action, "");
		CHECK_STR(e->outcome, "");
		CHECK_STR(e->reason, "");
		CHECK_STR(e->partner_id, "");
		CHECK_STR(e->purpose, "");
		CHECK_EQ_INT(e->batch_id.len, 0);
		CHECK_EQ_INT(e->batch_digest.len, 0);
		CHECK_EQ_INT(e->policy_hash.len, 0);
		CHECK_EQ_INT(e->k, 0);
		CHECK_EQ_INT(e->n_counts, 0);
		CHECK_EQ_INT(e->n_key_ids, 0);
		CHECK_EQ_INT(e->n_public_keys, 0);
		/* Byte for byte: the stored event is exactly seq and time. */
		only.seq = e->seq;
		only.time = e->time;
		len = crossgate__audit_event__get_packed_size(&only);
		CHECK(len <= sizeof(buf));
		if (len <= sizeof(buf)) {
			crossgate__audit_event__pack(&only, buf);
			CHECK_EQ_INT(l.event_len[i], len);
			CHECK(l.event_len[i] == len && memcmp(l.event[i], buf, len) == 0);
		}
		crossgate__audit_event__free_unpacked(e, NULL);
	}
	stored_log_free(&l);
	check_checkpoints(st, 3);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 3);
	CHECK_EQ_INT(rep.checkpoints, 3);
	audit_free(a);
	store_close(st);
}

/* After a rollback the in-memory tree must be the stored one, or every later checkpoint is wrong. */
static void
test_rollback(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	char path[256];
	int round;

	make_log("rollback.db", 3, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;

	for (round = 0; round < 2; round++) {
		Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT, ev2 = CROSSGATE__AUDIT_EVENT__INIT;

		ev.action = "ingest";
		ev2.action = "ingest";
		CHECK_EQ_INT(store_begin(st, &err), 0);
		CHECK_EQ_INT(audit_append(a, &ev, &err), 0);
		CHECK_EQ_INT(ev.seq, 3);
		CHECK_EQ_INT(audit_append(a, &ev2, &err), 0);
		CHECK_EQ_INT(ev2.seq, 4);
		CHECK_EQ_INT(audit_size(a), 3);   /* not committed yet */
		store_rollback(st);
		audit_txn_end(a, 0);
		CHECK_EQ_INT(audit_size(a), 3);
		CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_events"), 3);
		CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_checkpoints"), 3);
	}

	CHECK_EQ_INT(log_event(a, 3, &err), 0);
	CHECK_EQ_INT(audit_size(a), 4);
	CHECK_EQ_INT(query_int(st, "SELECT max(seq) FROM audit_events"), 3);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 4);
	CHECK_EQ_INT(rep.checkpoints, 4);
	check_checkpoints(st, 4);

	/* Two appends in one committed transaction. */
	{
		Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT, ev2 = CROSSGATE__AUDIT_EVENT__INIT;

		CHECK_EQ_INT(store_begin(st, &err), 0);
		CHECK_EQ_INT(audit_append(a, &ev, &err), 0);
		CHECK_EQ_INT(audit_append(a, &ev2, &err), 0);
		CHECK_EQ_INT(store_commit(st, &err), 0);
		audit_txn_end(a, 1);
		CHECK_EQ_INT(ev.seq, 4);
		CHECK_EQ_INT(ev2.seq, 5);
		CHECK_EQ_INT(audit_size(a), 6);
	}
	CHECK_EQ_INT(log_event(a, 6, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 7);
	check_checkpoints(st, 7);

	/* audit_log inside a caller's open transaction fails and leaves the tree as it was. */
	CHECK_EQ_INT(store_begin(st, &err), 0);
	memset(&err, 0, sizeof(err));
	CHECK(log_event(a, 7, &err) != 0);
	CHECK_EQ_INT(audit_size(a), 7);
	store_rollback(st);
	CHECK_EQ_INT(log_event(a, 7, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 8);

	/* A failed append (the row is already taken) rolls back in audit_log and the tree does not move. */
	CHECK_EQ_INT(exec_sql(st, "INSERT INTO audit_checkpoints(size, note) VALUES (9, 'x')"), SQLITE_OK);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(log_event(a, 8, &err), CG_ERR_DB);
	CHECK_CONTAINS(err.msg, "audit log");
	CHECK_CONTAINS(err.msg, "append checkpoint");
	CHECK_EQ_INT(audit_size(a), 8);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_events"), 8);
	CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_checkpoints WHERE size = 9"), SQLITE_OK);
	CHECK_EQ_INT(log_event(a, 8, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 9);
	check_checkpoints(st, 9);

	audit_free(a);
	store_close(st);
}

static void
test_reopen(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	unsigned char root_before[MERKLE_HASH_LEN];
	char path[256];
	int i, round;

	make_log("reopen.db", 5, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	memcpy(root_before, rep.root, sizeof(root_before));
	audit_free(a);
	a = NULL;
	CHECK_EQ_INT(store_checkpoint(st, &err), 0);
	store_close(st);
	st = NULL;

	for (round = 0; round < 2; round++) {
		CHECK_EQ_INT(store_open(path, 0, &st, &err), 0);
		if (st == NULL)
			return;
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
		CHECK_EQ_INT(rep.events, 5 + 3 * round);
		if (round == 0)
			CHECK(memcmp(rep.root, root_before, sizeof(root_before)) == 0);
		CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
		if (a == NULL)
			break;
		CHECK_EQ_INT(audit_size(a), 5 + 3 * round);
		for (i = 0; i < 3; i++)
			CHECK_EQ_INT(log_event(a, 5 + 3 * round + i, &err), 0);
		CHECK_EQ_INT(audit_size(a), 8 + 3 * round);
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
		CHECK_EQ_INT(rep.events, 8 + 3 * round);
		CHECK_EQ_INT(rep.checkpoints, 8 + 3 * round);
		check_checkpoints(st, (size_t)(8 + 3 * round));
		audit_free(a);
		a = NULL;
		store_close(st);
		st = NULL;
	}
	store_close(st);
}

static void
test_keys(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	struct keyfile_key *x = NULL;
	char path[256];

	make_log("keys.db", 3, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	audit_free(a);
	a = NULL;

	/* Another gateway's key: the very first checkpoint is not signed by it. */
	CHECK_EQ_INT(audit_verify(st, other_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "checkpoint at size 1");
	CHECK_CONTAINS(err.msg, path);
	CHECK_EQ_INT(rep.events, 0);

	/* Only an Ed25519 signing key can keep the log. */
	CHECK_EQ_INT(audit_open(st, gw_pub, &a, &err), CG_ERR_ARG);
	CHECK(a == NULL);
	CHECK_CONTAINS(err.msg, "Ed25519 signing key");
	CHECK_EQ_INT(keyfile_generate(KEYFILE_X25519_SECRET, &x, &err), 0);
	if (x != NULL) {
		a = (struct audit *)1;
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_open(st, x, &a, &err), CG_ERR_ARG);
		CHECK(a == NULL);
		CHECK_CONTAINS(err.msg, "Ed25519 signing key");
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_verify(st, x, &rep, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "Ed25519 public key");
		keyfile_free(x);
	}
	x = NULL;
	CHECK_EQ_INT(keyfile_generate(KEYFILE_STORAGE, &x, &err), 0);
	if (x != NULL) {
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_open(st, x, &a, &err), CG_ERR_ARG);
		CHECK(a == NULL);
		CHECK_CONTAINS(err.msg, "Ed25519 signing key");
		keyfile_free(x);
	}
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	store_close(st);
}

/* Replace one event's bytes through SQL, as someone with write access to the file could. */
static int
set_event(struct store *st, int seq, const unsigned char *bytes, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(store_db(st), "UPDATE audit_events SET event = ?1 WHERE seq = ?2", -1, &s, NULL)
	    != SQLITE_OK)
		return -1;
	sqlite3_bind_blob(s, 1, len ? bytes : (const void *)"", (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, seq);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE && sqlite3_changes(store_db(st)) == 1 ? 0 : -1;
}

static int
get_note(struct store *st, int size, char *out, size_t out_size)
{
	sqlite3_stmt *s = NULL;
	int r = -1;

	out[0] = '\0';
	if (sqlite3_prepare_v2(store_db(st), "SELECT note FROM audit_checkpoints WHERE size = ?1", -1, &s, NULL)
	    != SQLITE_OK)
		return -1;
	sqlite3_bind_int(s, 1, size);
	if (sqlite3_step(s) == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) < out_size) {
		snprintf(out, out_size, "%s", (const char *)sqlite3_column_text(s, 0));
		r = 0;
	}
	sqlite3_finalize(s);
	return r;
}

static int
set_note(struct store *st, int size, const char *note)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(store_db(st), "UPDATE audit_checkpoints SET note = ?1 WHERE size = ?2", -1, &s,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, note, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, size);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE && sqlite3_changes(store_db(st)) == 1 ? 0 : -1;
}

enum tamper {
	T_EVENT_BYTE, T_EVENT_REPACKED, T_EVENT_EMPTY, T_EVENT_DELETE, T_EVENT_DELETE_LAST, T_EVENT_SWAP,
	T_EVENT_SEQ_SWAP, T_EVENT_INSERT, T_CP_DELETE, T_CP_SIG, T_CP_ROOT, T_CP_MOVED, T_CP_FORGED,
	T_CP_DELETE_LAST, T_NTAMPER
};

/* Each tamper and what its message must name. */
static const struct {
	const char *name;
	const char *want1, *want2;
} tampers[T_NTAMPER] = {
	[T_EVENT_BYTE] = { "a byte of event 2", "event 2", "does not match the signed checkpoint at size 3" },
	[T_EVENT_REPACKED] = { "event 2 re-encoded with another actor", "event 2", "checkpoint at size 3" },
	[T_EVENT_EMPTY] = { "event 0 emptied", "event 0", "checkpoint at size 1" },
	[T_EVENT_DELETE] = { "event 2 deleted", "event 2 is missing", "jumps to 3" },
	[T_EVENT_DELETE_LAST] = { "last event deleted", "checkpoint signs size 5", "only 4 events" },
	[T_EVENT_SWAP] = { "events 1 and 2 swapped", "event 1", "moved" },
	[T_EVENT_SEQ_SWAP] = { "seq of events 1 and 2 swapped", "event 1", "moved" },
	[T_EVENT_INSERT] = { "event appended without checkpoint", "no signed checkpoint for size 6", "event 5" },
	[T_CP_DELETE] = { "checkpoint 3 deleted", "no signed checkpoint for size 3", "event 2" },
	[T_CP_SIG] = { "checkpoint 3 signature changed", "checkpoint at size 3", "signature" },
	[T_CP_ROOT] = { "checkpoint 3 root changed", "checkpoint at size 3", "signed note" },
	[T_CP_MOVED] = { "checkpoint 4 stored at size 3", "checkpoint stored at size 3", "signs size 4" },
	[T_CP_FORGED] = { "checkpoint 3 signed by another key", "checkpoint at size 3", "expected key" },
	[T_CP_DELETE_LAST] = { "last checkpoint deleted", "no signed checkpoint for size 5", "event 4" },
};

static void
apply_tamper(struct store *st, enum tamper t)
{
	struct stored_log l;
	char note[2048];
	size_t i;

	CHECK_EQ_INT(stored_log_load(st, &l), 0);
	CHECK_EQ_INT(l.n, 5);
	if (l.n != 5) {
		stored_log_free(&l);
		return;
	}
	switch (t) {
	case T_EVENT_BYTE: {
		/* "partner-2" -> "partner-3": still a well-formed event with the right seq. */
		int done = 0;

		for (i = 0; i + 9 <= l.event_len[2]; i++) {
			if (memcmp(l.event[2] + i, "partner-2", 9) == 0) {
				l.event[2][i + 8] = '3';
				done = 1;
				break;
			}
		}
		CHECK(done);
		CHECK_EQ_INT(set_event(st, 2, l.event[2], l.event_len[2]), 0);
		break;
	}
	case T_EVENT_REPACKED: {
		Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, l.event_len[2], l.event[2]);
		unsigned char buf[512];
		char *actor;
		size_t len;

		CHECK(e != NULL);
		if (e == NULL)
			break;
		actor = e->actor;   /* owned by the unpacked message: put back before freeing it */
		e->actor = "operator";
		len = crossgate__audit_event__get_packed_size(e);
		CHECK(len <= sizeof(buf));
		if (len <= sizeof(buf)) {
			crossgate__audit_event__pack(e, buf);
			CHECK_EQ_INT(set_event(st, 2, buf, len), 0);
		}
		e->actor = actor;
		crossgate__audit_event__free_unpacked(e, NULL);
		break;
	}
	case T_EVENT_EMPTY:
		CHECK_EQ_INT(set_event(st, 0, NULL, 0), 0);
		break;
	case T_EVENT_DELETE:
		CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_events WHERE seq = 2"), SQLITE_OK);
		break;
	case T_EVENT_DELETE_LAST:
		CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_events WHERE seq = 4"), SQLITE_OK);
		break;
	case T_EVENT_SWAP:
		CHECK_EQ_INT(set_event(st, 1, l.event[2], l.event_len[2]), 0);
		CHECK_EQ_INT(set_event(st, 2, l.event[1], l.event_len[1]), 0);
		break;
	case T_EVENT_SEQ_SWAP:
		CHECK_EQ_INT(exec_sql(st, "UPDATE audit_events SET seq = -1 WHERE seq = 1;"
		    "UPDATE audit_events SET seq = 1 WHERE seq = 2;"
		    "UPDATE audit_events SET seq = 2 WHERE seq = -1"), SQLITE_OK);
		break;
	case T_EVENT_INSERT: {
		/* A well-formed event 5, as the gateway would have written it, but never signed. */
		Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, l.event_len[4], l.event[4]);
		unsigned char buf[512];
		size_t len;

		CHECK(e != NULL);
		if (e == NULL)
			break;
		e->seq = 5;
		len = crossgate__audit_event__get_packed_size(e);
		CHECK(len <= sizeof(buf));
		if (len <= sizeof(buf)) {
			crossgate__audit_event__pack(e, buf);
			CHECK_EQ_INT(exec_sql(st, "INSERT INTO audit_events(seq, event, leaf) SELECT 5, x'', leaf "
			    "FROM audit_events WHERE seq = 4"), SQLITE_OK);
			CHECK_EQ_INT(set_event(st, 5, buf, len), 0);
		}
		crossgate__audit_event__free_unpacked(e, NULL);
		break;
	}
	case T_CP_DELETE:
		CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_checkpoints WHERE size = 3"), SQLITE_OK);
		break;
	case T_CP_DELETE_LAST:
		CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_checkpoints WHERE size = 5"), SQLITE_OK);
		break;
	case T_CP_SIG: {
		/* Change one base64 character of the signature line, near its end. */
		size_t len;

		CHECK_EQ_INT(get_note(st, 3, note, sizeof(note)), 0);
		len = strlen(note);
		CHECK(len > 10);
		if (len > 10) {
			note[len - 6] = note[len - 6] == 'A' ? 'B' : 'A';
			CHECK_EQ_INT(set_note(st, 3, note), 0);
		}
		break;
	}
	case T_CP_ROOT: {
		/* Line 3 of the body is the root: change its first character. */
		char *p;

		CHECK_EQ_INT(get_note(st, 3, note, sizeof(note)), 0);
		p = strchr(note, '\n');
		p = p != NULL ? strchr(p + 1, '\n') : NULL;
		CHECK(p != NULL);
		if (p != NULL) {
			p[1] = p[1] == 'A' ? 'B' : 'A';
			CHECK_EQ_INT(set_note(st, 3, note), 0);
		}
		break;
	}
	case T_CP_MOVED:
		CHECK_EQ_INT(get_note(st, 4, note, sizeof(note)), 0);
		CHECK_EQ_INT(set_note(st, 3, note), 0);
		break;
	case T_CP_FORGED: {
		/* A correct checkpoint body, signed under the gateway's name by a key that is not the gateway's. */
		struct checkpoint cp;
		struct cg_err err = { 0 };
		char body[NOTE_NAME_MAX + 80], *forged = NULL;
		size_t body_len = 0;

		memset(&cp, 0, sizeof(cp));
		audit_origin(gw_pub->id, cp.origin);
		cp.size = 3;
		merkle_root((const unsigned char (*)[MERKLE_HASH_LEN])l.leaf, 3, cp.root);
		CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &body_len), 0);
		CHECK_EQ_INT(note_sign(body, body_len, cp.origin, other_key->key, &forged, &err), 0);
		if (forged != NULL)
			CHECK_EQ_INT(set_note(st, 3, forged), 0);
		free(forged);
		break;
	}
	case T_NTAMPER:
		break;
	}
	stored_log_free(&l);
}

static void
test_tamper(void)
{
	int t;

	for (t = 0; t < T_NTAMPER; t++) {
		struct store *st;
		struct audit *a = NULL;
		struct audit_report rep;
		struct cg_err err = { 0 };
		char path[256], name[32];

		snprintf(name, sizeof(name), "tamper-%d.db", t);
		make_log(name, 5, path, sizeof(path), &st, &a);
		if (a == NULL)
			continue;
		audit_free(a);
		a = NULL;
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);

		apply_tamper(st, (enum tamper)t);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
		CHECK_EQ_INT(err.code, CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, tampers[t].want1);
		CHECK_CONTAINS(err.msg, tampers[t].want2);
		if (strstr(err.msg, tampers[t].want1) == NULL || strstr(err.msg, tampers[t].want2) == NULL)
			fprintf(stderr, "  (tamper: %s)\n", tampers[t].name);
		store_close(st);
	}
}

/*
 * The log refuses to grow on top of a tree that is not the one last signed:
 * the restored right edge must give the latest checkpoint's root.
 */
static void
test_open_damaged(void)
{
	static const struct {
		const char *sql, *want;
	} cases[] = {
		{ "DELETE FROM audit_events WHERE seq = 4", "event 4 is missing" },
		{ "DELETE FROM audit_checkpoints WHERE size = 5", "event 4 has no signed checkpoint" },
		/* size 5 = 4 + 1: the right edge is node (2, 0) and leaf 4 */
		{ "UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 4", "does not match the signed checkpoint at size 5" },
		{ "UPDATE audit_nodes SET hash = zeroblob(32) WHERE id = 4 * 64 + 2", "does not match the signed checkpoint" },
		{ "DELETE FROM audit_nodes WHERE id = 4 * 64 + 2", "node at level 2, index 0 is missing" },
		{ "DELETE FROM audit_checkpoints; DELETE FROM audit_spans", "have no signed checkpoint" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store *st;
		struct audit *a = NULL;
		struct cg_err err = { 0 };
		char path[256], name[32];

		snprintf(name, sizeof(name), "damaged-%zu.db", i);
		make_log(name, 5, path, sizeof(path), &st, &a);
		if (a == NULL)
			return;
		audit_free(a);
		a = NULL;
		CHECK_EQ_INT(exec_sql(st, cases[i].sql), SQLITE_OK);
		a = (struct audit *)1;
		CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), CG_ERR_VERIFY);
		CHECK(a == NULL);
		CHECK_CONTAINS(err.msg, path);
		CHECK_CONTAINS(err.msg, cases[i].want);
		CHECK_CONTAINS(err.msg, "audit verify");
		store_close(st);
	}

	/* Another gateway's key does not take over a log. */
	{
		struct store *st;
		struct audit *a = NULL;
		struct cg_err err = { 0 };
		char path[256];

		make_log("damaged-key.db", 2, path, sizeof(path), &st, &a);
		if (a == NULL)
			return;
		audit_free(a);
		a = NULL;
		CHECK_EQ_INT(audit_open(st, other_key, &a, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "is not this gateway key's");
		store_close(st);
	}
}

/*
 * The leaf column and the node table are part of the stored tree (proofs are
 * made of them): verification recomputes both and names a changed one.
 */
static void
test_leaf_column(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	char path[256];

	make_log("leaf.db", 4, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	audit_free(a);
	a = NULL;
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 1"), SQLITE_OK);
	/* Leaf 1 is not on the right edge of the 4-leaf tree: appending still signs the true tree. */
	CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
	if (a == NULL) {
		store_close(st);
		return;
	}
	CHECK_EQ_INT(audit_size(a), 4);
	CHECK_EQ_INT(log_event(a, 4, &err), 0);
	CHECK_EQ_INT(log_event(a, 5, &err), 0);
	check_checkpoints(st, 6);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "event 1: the stored leaf hash does not match the event");
	CHECK_EQ_INT(rep.events, 0);
	{
		/* Put the right leaf back from the bytes. */
		struct stored_log l;

		CHECK_EQ_INT(stored_log_load(st, &l), 0);
		{
			sqlite3_stmt *s = NULL;

			CHECK_EQ_INT(sqlite3_prepare_v2(store_db(st), "UPDATE audit_events SET leaf = ?1 WHERE seq = 1",
			    -1, &s, NULL), SQLITE_OK);
			sqlite3_bind_blob(s, 1, l.leaf[1], MERKLE_HASH_LEN, SQLITE_STATIC);
			CHECK_EQ_INT(sqlite3_step(s), SQLITE_DONE);
			sqlite3_finalize(s);
		}
		stored_log_free(&l);
	}
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 6);

	/* A node that is not on the right edge: the log still grows, verification names the node. */
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_nodes SET hash = zeroblob(32) WHERE id = 2 * 64 + 1"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "stored tree node at level 1, index 0");
	CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_nodes WHERE id = 2 * 64 + 1"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "stored tree node at level 1, index 0");
	audit_free(a);
	store_close(st);
}

/* An auditor's copy: every event and its checkpoint, walked and imported, verifies the same. */
struct copy_arg {
	struct store *dst;
	uint64_t n;
	int stop_at;
};
static int
copy_cb(const struct audit_record *rec, void *arg)
{
	struct copy_arg *c = arg;
	struct cg_err err = { 0 };

	if (c->stop_at >= 0 && rec->seq == (uint64_t)c->stop_at)
		return 42;
	CHECK_EQ_INT(audit_import(c->dst, rec, &err), 0);
	c->n++;
	return 0;
}

static void
test_iter_import(void)
{
	struct store *st = NULL, *copy = NULL;
	struct audit *a = NULL;
	struct audit_report rep, rep2;
	struct copy_arg ca;
	struct cg_err err = { 0 };
	char path[256], cpath[256];
	unsigned char ev[4] = { 0x08, 0x05, 0x10, 0x01 };

	make_log("iter.db", 6, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	tmp_path(cpath, sizeof(cpath), "iter-copy.db");
	CHECK_EQ_INT(store_open(cpath, STORE_OPEN_CREATE, &copy, &err), 0);
	if (copy == NULL)
		goto out;
	ca.dst = copy;
	ca.n = 0;
	ca.stop_at = -1;
	CHECK_EQ_INT(audit_iter(st, 0, copy_cb, &ca, &err), 0);
	CHECK_EQ_INT(ca.n, 6);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(audit_verify(copy, gw_pub, &rep2, &err), 0);
	CHECK_EQ_INT(rep2.events, 6);
	CHECK(memcmp(rep.root, rep2.root, sizeof(rep.root)) == 0);
	/* A walk from the middle, and a callback that stops it. */
	ca.n = 0;
	ca.stop_at = 5;
	ca.dst = NULL;
	CHECK_EQ_INT(audit_iter(st, 5, copy_cb, &ca, &err), 42);
	/* Only the next index is accepted, and a forged event fails verification of the copy. */
	CHECK_EQ_INT(import_one(copy, 9, ev, sizeof(ev), rep.latest_checkpoint, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "event 9 is not the next one");
	CHECK_EQ_INT(import_one(copy, 6, ev, sizeof(ev), rep.latest_checkpoint, &err), 0);
	CHECK_EQ_INT(audit_verify(copy, gw_pub, &rep2, &err), CG_ERR_VERIFY);
out:
	store_close(copy);
	audit_free(a);
	store_close(st);
}

int
main(void)
{
	if (audit_fixture_init("test-audit") != 0)
		CGT_DONE();
	test_origin();
	test_log();
	test_empty_event();
	test_rollback();
	test_reopen();
	test_keys();
	test_tamper();
	test_open_damaged();
	test_leaf_column();
	test_iter_import();
	audit_fixture_done();
	CGT_DONE();
}

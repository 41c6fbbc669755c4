/* test_consistency.c - consistency proof files: every pair of sizes, tampering, forks, rotations, spans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/audit.h"
#include "audit/consistency.h"
#include "crypto/keyfile.h"
#include "proto/audit.pb-c.h"
#include "store/store.h"
#include "tests/unit/cgtest.h"

#define N_EVENTS 13

static char tmpdir[] = "/tmp/cg-test-consistency-XXXXXX";
static struct keyfile_key *gw_key, *gw_pub, *next_key, *other_key, *other_pub;

static struct store *
open_log(const char *name, const struct keyfile_key *key, struct audit **a)
{
	struct store *st = NULL;
	struct cg_err err = { 0 };
	char path[600];

	*a = NULL;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	CHECK_EQ_INT(store_open(path, STORE_OPEN_CREATE, &st, &err), 0);
	if (st == NULL)
		return NULL;
	CHECK_EQ_INT(audit_schema(st, &err), 0);
	CHECK_EQ_INT(audit_open(st, key, a, &err), 0);
	if (*a == NULL) {
		store_close(st);
		return NULL;
	}
	return st;
}

/* One event per call; `tag` makes two logs' events differ. */
static int
log_event(struct audit *a, const char *tag)
{
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	struct cg_err err = { 0 };

	ev.actor = "operator";
	ev.action = "test";
	ev.outcome = "ok";
	ev.reason = (char *)tag;
	return audit_log(a, &ev, &err);
}

/* Re-encode a proof file after `edit` changed it (NULL if it does not decode). */
static unsigned char *
edit_file(const unsigned char *buf, size_t len, void (*edit)(Crossgate__Audit__ConsistencyProof *, void *), void *arg,
    size_t *out_len)
{
	Crossgate__Audit__ConsistencyProof *pf = crossgate__audit__consistency_proof__unpack(NULL, len, buf);
	unsigned char *out;

	if (pf == NULL)
		return NULL;
	edit(pf, arg);
	*out_len = crossgate__audit__consistency_proof__get_packed_size(pf);
	if ((out = malloc(*out_len ? *out_len : 1)) != NULL)
		crossgate__audit__consistency_proof__pack(pf, out);
	crossgate__audit__consistency_proof__free_unpacked(pf, NULL);
	return out;
}

static void
swap_notes(Crossgate__Audit__ConsistencyProof *pf, void *arg)
{
	char *t = pf->old_checkpoint;

	(void)arg;
	pf->old_checkpoint = pf->new_checkpoint;
	pf->new_checkpoint = t;
}

static void
flip_hash(Crossgate__Audit__ConsistencyProof *pf, void *arg)
{
	size_t i = *(size_t *)arg;

	if (i < pf->n_hashes)
		pf->hashes[i].data[i % 32] ^= 0x80;
}

static void
drop_rotations(Crossgate__Audit__ConsistencyProof *pf, void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < pf->n_rotations; i++)
		crossgate__audit__key_rotation__free_unpacked(pf->rotations[i], NULL);
	pf->n_rotations = 0;
}

/* Put a copy of another note in place of the new checkpoint. */
static void
replace_new(Crossgate__Audit__ConsistencyProof *pf, void *arg)
{
	char *copy = strdup(arg);

	if (copy == NULL)
		return;
	free(pf->new_checkpoint);
	pf->new_checkpoint = copy;
}

static void
test_every_pair(struct store *st)
{
	struct checkpoint older, newer;
	struct cg_err err = { 0 };
	unsigned char *buf;
	size_t len;
	uint64_t m, n;
	int ok = 1;

	for (n = 1; n <= N_EVENTS; n++) {
		for (m = 1; m <= n; m++) {
			buf = NULL;
			if (consistency_prove(st, m, n, &buf, &len, &err) != 0 ||
			    consistency_verify(buf, len, gw_pub, &older, &newer, &err) != 0 ||
			    older.size != m || newer.size != n || !consistency_is_file(buf, len)) {
				fprintf(stderr, "consistency %llu -> %llu: %s\n", (unsigned long long)m,
				    (unsigned long long)n, err.msg);
				ok = 0;
			}
			free(buf);
		}
	}
	CHECK(ok);
	/* n = 0 is the latest checkpoint. */
	buf = NULL;
	CHECK_EQ_INT(consistency_prove(st, 2, 0, &buf, &len, &err), 0);
	CHECK_EQ_INT(consistency_verify(buf, len, gw_pub, &older, &newer, &err), 0);
	CHECK_EQ_INT(newer.size, N_EVENTS);
	free(buf);
}

static void
test_refusals(struct store *st)
{
	struct checkpoint older, newer;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL, *bad;
	size_t len, blen, i;
	int all = 1;

	CHECK_EQ_INT(consistency_prove(st, 0, 5, &buf, &len, &err), CG_ERR_ARG);
	CHECK_EQ_INT(consistency_prove(st, 6, 5, &buf, &len, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "the old tree size 6 must be between 1 and the new size 5");
	CHECK_EQ_INT(consistency_prove(st, 1, N_EVENTS + 1, &buf, &len, &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "no signed checkpoint of size 14");
	CHECK(buf == NULL);

	/* 5 -> 13: a proof of several hashes, each of which matters. */
	CHECK_EQ_INT(consistency_prove(st, 5, N_EVENTS, &buf, &len, &err), 0);
	if (buf == NULL)
		return;
	CHECK_EQ_INT(consistency_verify(buf, len, other_pub, &older, &newer, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "the old checkpoint at size 5: not signed by gateway key");
	CHECK_EQ_INT(newer.size, 0);
	bad = edit_file(buf, len, swap_notes, NULL, &blen);
	CHECK_EQ_INT(consistency_verify(bad, blen, gw_pub, &older, &newer, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "the old tree (size 13) is not older than the new one (size 5)");
	free(bad);
	for (i = 0; i < 4; i++) {
		bad = edit_file(buf, len, flip_hash, &i, &blen);
		if (bad == NULL || consistency_verify(bad, blen, gw_pub, &older, &newer, &err) != CG_ERR_VERIFY ||
		    strstr(err.msg, "the tree of size 13 does not extend the tree of size 5") == NULL)
			all = 0;
		free(bad);
	}
	CHECK(all);
	/* Cut short, or not a proof file at all. */
	CHECK_EQ_INT(consistency_verify(buf, len / 2, gw_pub, &older, &newer, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(consistency_is_file(buf, len / 2), 0);
	free(buf);
	buf = NULL;
	CHECK_EQ_INT(audit_prove(st, 3, &buf, &len, &err), 0);
	if (buf != NULL) {
		CHECK_EQ_INT(consistency_is_file(buf, len), 0);
		CHECK_EQ_INT(consistency_verify(buf, len, gw_pub, &older, &newer, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "not a consistency proof file");
	}
	free(buf);
}

/* A fork: the same key signed another history of the same length; its checkpoint does not extend ours. */
static void
test_fork(struct store *st)
{
	struct audit *fa = NULL;
	struct store *fork = open_log("fork.db", gw_key, &fa);
	struct checkpoint older, newer;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL, *bad;
	char *note = NULL;
	uint64_t size = 0;
	size_t len, blen;
	int i;

	if (fork == NULL)
		return;
	for (i = 0; i < N_EVENTS; i++)
		CHECK_EQ_INT(log_event(fa, i == 7 ? "forked" : "same"), 0);
	CHECK_EQ_INT(audit_latest_checkpoint(fork, 0, &note, &size, &err), 0);
	CHECK_EQ_INT(size, N_EVENTS);
	CHECK_EQ_INT(consistency_prove(st, 9, N_EVENTS, &buf, &len, &err), 0);
	if (buf != NULL && note != NULL) {
		bad = edit_file(buf, len, replace_new, note, &blen);
		CHECK_EQ_INT(consistency_verify(bad, blen, gw_pub, &older, &newer, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "the tree of size 13 does not extend the tree of size 9");
		free(bad);
	}
	free(buf);
	free(note);
	audit_free(fa);
	store_close(fork);
}

/* Across a key rotation the first key checks both ends, through the rotations the file carries. */
static void
test_rotation(void)
{
	struct audit *a = NULL;
	struct store *st = open_log("rotate.db", gw_key, &a);
	struct checkpoint older, newer;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL, *bad;
	size_t len, blen;
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(log_event(a, "before"), 0);
	CHECK_EQ_INT(audit_rotate(a, next_key, &err), 0);   /* event 4, checkpoint 5 */
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(log_event(a, "after"), 0);
	CHECK_EQ_INT(consistency_prove(st, 2, 0, &buf, &len, &err), 0);
	if (buf == NULL)
		goto out;
	CHECK_EQ_INT(consistency_verify(buf, len, gw_pub, &older, &newer, &err), 0);
	CHECK_EQ_INT(older.size, 2);
	CHECK_EQ_INT(newer.size, 8);
	bad = edit_file(buf, len, drop_rotations, NULL, &blen);
	CHECK_EQ_INT(consistency_verify(bad, blen, gw_pub, &older, &newer, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "the new checkpoint at size 8: not signed by gateway key");
	free(bad);
	free(buf);
	buf = NULL;
	/* Both ends before the rotation need no rotation: the file carries none below its new size. */
	CHECK_EQ_INT(consistency_prove(st, 1, 4, &buf, &len, &err), 0);
	CHECK_EQ_INT(consistency_verify(buf, len, gw_pub, &older, &newer, &err), 0);
out:
	free(buf);
	audit_free(a);
	store_close(st);
}

/* Events appended under one checkpoint have no checkpoint between them. */
static void
test_span(void)
{
	struct audit *a = NULL;
	struct store *st = open_log("span.db", gw_key, &a);
	Crossgate__AuditEvent ev[3], *evs[3];
	struct cg_err err = { 0 };
	unsigned char *buf = NULL;
	size_t len, i;

	if (st == NULL)
		return;
	CHECK_EQ_INT(log_event(a, "single"), 0);
	for (i = 0; i < 3; i++) {
		crossgate__audit_event__init(&ev[i]);
		ev[i].actor = "gateway";
		ev[i].action = "bulk";
		ev[i].outcome = "ok";
		evs[i] = &ev[i];
	}
	CHECK_EQ_INT(audit_append_many(a, evs, 3, &err), 0);   /* sizes 2, 3 inside; 4 signed */
	CHECK_EQ_INT(consistency_prove(st, 2, 4, &buf, &len, &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "no signed checkpoint of size 2");
	CHECK_EQ_INT(consistency_prove(st, 1, 4, &buf, &len, &err), 0);
	free(buf);
	audit_free(a);
	store_close(st);
}

int
main(void)
{
	struct audit *a = NULL;
	struct store *st;
	struct cg_err err = { 0 };
	int i;

	if (sodium_init() < 0 || mkdtemp(tmpdir) == NULL)
		return 1;
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &gw_key, &err), 0);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &next_key, &err), 0);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &other_key, &err), 0);
	if (gw_key == NULL || next_key == NULL || other_key == NULL)
		CGT_DONE();
	CHECK_EQ_INT(keyfile_public_of(gw_key, &gw_pub, &err), 0);
	CHECK_EQ_INT(keyfile_public_of(other_key, &other_pub, &err), 0);
	if (gw_pub == NULL || other_pub == NULL)
		CGT_DONE();
	if ((st = open_log("log.db", gw_key, &a)) != NULL) {
		for (i = 0; i < N_EVENTS; i++)
			CHECK_EQ_INT(log_event(a, "same"), 0);
		test_every_pair(st);
		test_refusals(st);
		test_fork(st);
		audit_free(a);
		store_close(st);
	}
	test_rotation();
	test_span();
	keyfile_free(gw_key);
	keyfile_free(gw_pub);
	keyfile_free(next_key);
	keyfile_free(other_key);
	keyfile_free(other_pub);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	CGT_DONE();
}

/*
 * test_audit_tree.c - the stored tree and what stands on it: inclusion and
 * consistency proofs, proof files, checkpoints kept by auditors, erasure,
 * witness cosignatures, imports of spans, key rotation (fixture: audit_log.h).
 */
#include "tests/unit/audit_log.h"

/* A log of n events appended in spans of up to `chunk` under one checkpoint each. */
static void
bulk_log(const char *name, uint64_t n, size_t chunk, char *path, size_t path_size, struct store **st,
    struct audit **a)
{
	struct cg_err err = { 0 };
	Crossgate__AuditEvent *evs[64], ev[64];
	Crossgate__AuditEvent__CountsEntry c[64], *cp[64];
	uint64_t done = 0;
	size_t i, k;

	*a = NULL;
	if (chunk > 64)
		chunk = 64;
	if ((*st = fresh_store(name, path, path_size)) == NULL)
		return;
	CHECK_EQ_INT(audit_open(*st, gw_key, a, &err), 0);
	if (*a == NULL)
		return;
	while (done < n) {
		k = (size_t)(n - done < chunk ? n - done : chunk);
		for (i = 0; i < k; i++) {
			crossgate__audit_event__init(&ev[i]);
			crossgate__audit_event__counts_entry__init(&c[i]);
			c[i].key = "records";
			c[i].value = done + i;
			cp[i] = &c[i];
			ev[i].actor = "gateway";
			ev[i].action = "ingest";
			ev[i].outcome = "ok";
			ev[i].counts = &cp[i];
			ev[i].n_counts = 1;
			evs[i] = &ev[i];
		}
		if (audit_append_many(*a, evs, k, &err) != 0) {
			CHECK(!"audit_append_many failed");
			fprintf(stderr, "%s\n", err.msg);
			return;
		}
		done += k;
	}
	CHECK_EQ_INT(audit_size(*a), n);
}

/* The leaf column as stored (malloc'd, n entries). */
static unsigned char (*load_leaves(struct store *st, uint64_t n))[MERKLE_HASH_LEN]
{
	unsigned char (*v)[MERKLE_HASH_LEN] = calloc(n ? n : 1, MERKLE_HASH_LEN);
	sqlite3_stmt *s = NULL;
	uint64_t i = 0;

	if (v == NULL || sqlite3_prepare_v2(store_db(st), "SELECT leaf FROM audit_events ORDER BY seq", -1, &s, NULL)
	    != SQLITE_OK)
		return v;
	while (sqlite3_step(s) == SQLITE_ROW && i < n) {
		if (sqlite3_column_bytes(s, 0) == MERKLE_HASH_LEN)
			memcpy(v[i], sqlite3_column_blob(s, 0), MERKLE_HASH_LEN);
		i++;
	}
	sqlite3_finalize(s);
	return v;
}

/*
 * Property: for random sizes up to 100,000 and random m <= n, the proofs
 * made from the stored tree verify against independently computed roots, and
 * fail against a different root.
 */
static void
test_proof_property(void)
{
	uint64_t sizes[] = { 1, 2, 3, 5, 8, 13, 64, 100, 0 };
	size_t si;

	sizes[8] = 1 + randombytes_uniform(100000);
	for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint64_t n = sizes[si], i, m, idx;
		struct store *st;
		struct audit *a = NULL;
		struct merkle_frontier f;
		unsigned char (*leaves)[MERKLE_HASH_LEN], (*roots)[MERKLE_HASH_LEN];
		unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN], gen[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
		unsigned char bad[MERKLE_HASH_LEN];
		struct cg_err err = { 0 };
		char path[256], name[32];
		size_t len, glen;
		int t, fails = cgt_fail;

		snprintf(name, sizeof(name), "prop-%zu.db", si);
		bulk_log(name, n, 64, path, sizeof(path), &st, &a);
		if (a == NULL) {
			store_close(st);
			continue;
		}
		leaves = load_leaves(st, n);
		roots = calloc(n + 1, MERKLE_HASH_LEN);
		if (leaves == NULL || roots == NULL) {
			free(leaves);
			free(roots);
			break;
		}
		merkle_frontier_init(&f);
		merkle_frontier_root(&f, roots[0]);
		for (i = 0; i < n; i++) {
			merkle_frontier_append(&f, leaves[i]);
			merkle_frontier_root(&f, roots[i + 1]);
		}
		for (t = 0; t < 100 && cgt_fail == fails; t++) {
			m = 1 + randombytes_uniform((uint32_t)n);
			idx = randombytes_uniform((uint32_t)m);
			CHECK_EQ_INT(audit_inclusion_proof(st, idx, m, proof, &len, &err), 0);
			CHECK_EQ_INT(merkle_verify_inclusion(leaves[idx], idx, m,
			    (const unsigned char (*)[MERKLE_HASH_LEN])proof, len, roots[m], &err), 0);
			memcpy(bad, roots[m], MERKLE_HASH_LEN);
			bad[t % MERKLE_HASH_LEN] ^= 0x80;
			CHECK_EQ_INT(merkle_verify_inclusion(leaves[idx], idx, m,
			    (const unsigned char (*)[MERKLE_HASH_LEN])proof, len, bad, &err), CG_ERR_VERIFY);
			if (m <= 4096) {
				CHECK_EQ_INT(merkle_inclusion_proof((const unsigned char (*)[MERKLE_HASH_LEN])leaves, m, idx,
				    gen, &glen, &err), 0);
				CHECK(glen == len && memcmp(gen, proof, len * MERKLE_HASH_LEN) == 0);
			}

			m = 1 + randombytes_uniform((uint32_t)n);
			i = m + randombytes_uniform((uint32_t)(n - m + 1));   /* m <= i <= n */
			CHECK_EQ_INT(audit_consistency_proof(st, m, i, proof, &len, &err), 0);
			CHECK_EQ_INT(merkle_verify_consistency(m, i, roots[m], roots[i],
			    (const unsigned char (*)[MERKLE_HASH_LEN])proof, len, &err), 0);
			memcpy(bad, roots[i], MERKLE_HASH_LEN);
			bad[t % MERKLE_HASH_LEN] ^= 0x01;
			CHECK_EQ_INT(merkle_verify_consistency(m, i, roots[m], bad,
			    (const unsigned char (*)[MERKLE_HASH_LEN])proof, len, &err), CG_ERR_VERIFY);
			memcpy(bad, roots[m], MERKLE_HASH_LEN);
			bad[t % MERKLE_HASH_LEN] ^= 0x01;
			CHECK_EQ_INT(merkle_verify_consistency(m, i, bad, roots[i],
			    (const unsigned char (*)[MERKLE_HASH_LEN])proof, len, &err), CG_ERR_VERIFY);
		}
		if (cgt_fail != fails)
			fprintf(stderr, "  (proof property: size %llu)\n", (unsigned long long)n);
		/* Out of range is refused, not guessed. */
		CHECK_EQ_INT(audit_inclusion_proof(st, n, n, proof, &len, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "is not in the log");
		CHECK_EQ_INT(audit_inclusion_proof(st, 0, n + 1, proof, &len, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "exceeds the log's");
		CHECK_EQ_INT(audit_consistency_proof(st, 1, n + 1, proof, &len, &err), CG_ERR_ARG);
		CHECK_EQ_INT(audit_consistency_proof(st, 0, n, proof, &len, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "old tree size is zero");
		if (si == 8 || si == 6) {
			struct audit_report rep;

			CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
			CHECK_EQ_INT(rep.events, n);
			CHECK(memcmp(rep.root, roots[n], MERKLE_HASH_LEN) == 0);
		}
		free(leaves);
		free(roots);
		audit_free(a);
		store_close(st);
	}
}

/* One checkpoint per span: sizes inside it need none, a tampered event in it is still caught. */
static void
test_append_many(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	char path[256];

	bulk_log("many.db", 150, 64, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_checkpoints"), 3);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_spans"), 3);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 150);
	CHECK_EQ_INT(rep.checkpoints, 3);
	/* Per-event appends after a span. */
	CHECK_EQ_INT(log_event(a, 1, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.checkpoints, 4);
	{
		Crossgate__AuditEvent *none[1] = { NULL };

		CHECK_EQ_INT(audit_append_many(a, none, 0, &err), CG_ERR_ARG);
	}
	audit_free(a);
	a = NULL;

	/* One event of the first span changed (the seq varint is 1 byte there: change the last byte). */
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_events SET event = CAST(substr(event, 1, length(event) - 1) || x'7f' "
	    "AS BLOB) WHERE seq = 10"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "event 10 does not match the signed checkpoint at size 64");
	/* The same with the leaf column and nodes rewritten to match: only the span's checkpoint knows. */
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 10;"
	    "DELETE FROM audit_nodes"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "does not match the signed checkpoint at size 64");
	store_close(st);

	bulk_log("many2.db", 100, 64, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	audit_free(a);
	CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_spans WHERE end = 64"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "no signed checkpoint for size 1: event 0");
	store_close(st);
}

/* The server and a CLI command share a database: each append starts from what is stored. */
static void
test_concurrent(void)
{
	struct store *st1, *st2 = NULL;
	struct audit *a1 = NULL, *a2 = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	Crossgate__AuditEvent ev = CROSSGATE__AUDIT_EVENT__INIT;
	char path[256];
	int i;

	make_log("shared.db", 3, path, sizeof(path), &st1, &a1);
	if (a1 == NULL)
		return;
	CHECK_EQ_INT(store_open(path, 0, &st2, &err), 0);
	if (st2 == NULL)
		goto out;
	CHECK_EQ_INT(audit_open(st2, gw_key, &a2, &err), 0);
	if (a2 == NULL)
		goto out;
	for (i = 0; i < 3; i++) {
		CHECK_EQ_INT(log_event(a1, 10 + i, &err), 0);
		CHECK_EQ_INT(audit_log(a2, &ev, &err), 0);
		CHECK_EQ_INT(ev.seq, 4 + 2 * i);
	}
	CHECK_EQ_INT(audit_size(a1), 8);
	CHECK_EQ_INT(audit_size(a2), 9);
	CHECK_EQ_INT(audit_verify(st1, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 9);
	check_checkpoints(st1, 9);
	/* A reload refuses a tree that is not the signed one. */
	CHECK_EQ_INT(log_event(a1, 20, &err), 0);
	/* size 10: the right edge is node (3, 0) and node (1, 4), id 10 * 64 + 1 */
	CHECK_EQ_INT(exec_sql(st1, "UPDATE audit_nodes SET hash = zeroblob(32) WHERE id = 10 * 64 + 1"), SQLITE_OK);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(audit_log(a2, &ev, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "does not match the signed checkpoint at size 10");
	CHECK_EQ_INT(query_int(st1, "SELECT count(*) FROM audit_events"), 10);
out:
	audit_free(a1);
	audit_free(a2);
	store_close(st1);
	store_close(st2);
}

/* Pack a proof message into buf; returns its length. */
static size_t
pack_proof(const Crossgate__Audit__InclusionProof *pf, unsigned char **buf)
{
	size_t len = crossgate__audit__inclusion_proof__get_packed_size(pf);

	*buf = malloc(len ? len : 1);
	if (*buf != NULL)
		crossgate__audit__inclusion_proof__pack(pf, *buf);
	return len;
}

static void
test_prove_files(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_proof *p = NULL;
	struct checkpoint cp;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL;
	char path[256];
	size_t len = 0;

	make_log("prove.db", 9, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_prove(st, 4, &buf, &len, &err), 0);
	CHECK(len > 100 && len < AUDIT_PROOF_MAX);
	CHECK_EQ_INT(audit_proof_parse(buf, len, &p, &err), 0);
	if (p == NULL)
		goto out;
	CHECK_EQ_INT(p->index, 4);
	CHECK_EQ_INT(p->erased, 0);
	CHECK_EQ_INT(p->n_hashes, 4);
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), 0);
	CHECK_EQ_INT(cp.size, 9);

	/* Each lie is named. */
	CHECK_EQ_INT(audit_proof_verify(p, other_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "proof: checkpoint at size");
	CHECK_EQ_INT(cp.size, 0);
	p->event[p->event_len - 1] ^= 1;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "leaf hash does not match the event bytes");
	merkle_leaf_hash(p->event, p->event_len, p->leaf);
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "is not in the tree the checkpoint signs");
	p->event[p->event_len - 1] ^= 1;
	merkle_leaf_hash(p->event, p->event_len, p->leaf);
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), 0);
	p->index = 5;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "the event says it is event 4, not 5");
	p->index = 9;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "not below the checkpoint's tree size 9");
	p->index = 4;
	p->hashes[1][0] ^= 1;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "computed root does not match");
	p->hashes[1][0] ^= 1;
	p->n_hashes--;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "expected 4");
	p->n_hashes++;
	CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), 0);

	/* Proofs name a stored event; the latest checkpoint bounds them. */
	free(buf);
	buf = NULL;
	CHECK_EQ_INT(audit_prove(st, 9, &buf, &len, &err), CG_ERR_NOTFOUND);
	CHECK_CONTAINS(err.msg, "event 9 is not in the log (it holds 9 events)");
	CHECK(buf == NULL);

	/* The parser's rules, one field at a time. */
	{
		Crossgate__Audit__InclusionProof pf = CROSSGATE__AUDIT__INCLUSION_PROOF__INIT;
		ProtobufCBinaryData hd[65];
		unsigned char h[65][MERKLE_HASH_LEN], ev[8] = { 0x08, 0x04 };
		struct audit_proof *q = (struct audit_proof *)1;
		size_t i;
		const unsigned char junk[] = { 0xff, 0xff, 0xff };
		struct {
			int field;
			const char *want;
		} cases[] = {
			{ 0, NULL }, { 1, "format is not" }, { 2, "leaf_hash has 31 bytes" }, { 3, "65 proof hashes" },
			{ 4, "proof hash 1 has 31 bytes" }, { 5, "erased event carries event bytes" },
			{ 6, "event bytes are missing" }, { 7, "checkpoint is missing" },
		};

		for (i = 0; i < 65; i++) {
			memset(h[i], (int)i, MERKLE_HASH_LEN);
			hd[i].data = h[i];
			hd[i].len = MERKLE_HASH_LEN;
		}
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			unsigned char *b = NULL;
			size_t bl;

			crossgate__audit__inclusion_proof__init(&pf);
			pf.format = AUDIT_PROOF_FORMAT;
			pf.index = 4;
			pf.event.data = ev;
			pf.event.len = 2;
			pf.leaf_hash.data = h[0];
			pf.leaf_hash.len = MERKLE_HASH_LEN;
			pf.hashes = hd;
			pf.n_hashes = 4;
			pf.checkpoint = p->checkpoint;
			switch (cases[i].field) {
			case 1: pf.format = "crossgate-inclusion-proof/v2"; break;
			case 2: pf.leaf_hash.len = 31; break;
			case 3: pf.n_hashes = 65; break;
			case 4: hd[1].len = 31; break;
			case 5: pf.erased = 1; break;
			case 6: pf.event.len = 0; break;
			case 7: pf.checkpoint = ""; break;
			default: break;
			}
			bl = pack_proof(&pf, &b);
			hd[1].len = MERKLE_HASH_LEN;
			if (b == NULL)
				continue;
			memset(&err, 0, sizeof(err));
			if (cases[i].want == NULL) {
				CHECK_EQ_INT(audit_proof_parse(b, bl, &q, &err), 0);
				audit_proof_free(q);
			} else {
				CHECK_EQ_INT(audit_proof_parse(b, bl, &q, &err) < 0, 1);
				CHECK(q == NULL);
				CHECK_CONTAINS(err.msg, cases[i].want);
			}
			free(b);
		}
		CHECK_EQ_INT(audit_proof_parse(junk, sizeof(junk), &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "does not parse");
		CHECK_EQ_INT(audit_proof_parse(junk, 0, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "proof file is empty");
		CHECK_EQ_INT(audit_proof_parse(junk, AUDIT_PROOF_MAX + 1, &q, &err), CG_ERR_LIMIT);
		CHECK_CONTAINS(err.msg, "larger than");
	}
out:
	audit_proof_free(p);
	audit_proof_free(NULL);
	free(buf);
	audit_free(a);
	store_close(st);
}

static int
saved_checkpoint(struct store *st, struct checkpoint *cp)
{
	struct cg_err err = { 0 };
	char *note = NULL;
	uint64_t size;
	int r;

	if (audit_latest_checkpoint(st, 0, &note, &size, &err) != 0)
		return -1;
	r = audit_checkpoint_check(note, strlen(note), gw_pub, cp, &err);
	free(note);
	return r == 0 && cp->size == size ? 0 : -1;
}

/* verify --since: the current log must extend a checkpoint an auditor kept, whoever re-signed what. */
static void
test_since(void)
{
	struct store *st, *st2;
	struct audit *a = NULL, *a2 = NULL;
	struct audit_report rep;
	struct checkpoint saved, c2;
	struct cg_err err = { 0 };
	char path[256], path2[256], *note = NULL;
	uint64_t size;
	int i;

	make_log("since.db", 6, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(saved_checkpoint(st, &saved), 0);
	CHECK_EQ_INT(saved.size, 6);
	for (i = 6; i < 9; i++)
		CHECK_EQ_INT(log_event(a, i, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(audit_verify_extends(st, &saved, &rep, &err), 0);
	/* Equal sizes: the same tree. */
	CHECK_EQ_INT(saved_checkpoint(st, &c2), 0);
	CHECK_EQ_INT(audit_verify_extends(st, &c2, &rep, &err), 0);

	/* A saved checkpoint must be this gateway's. */
	CHECK_EQ_INT(audit_latest_checkpoint(st, 0, &note, &size, &err), 0);
	if (note != NULL) {
		CHECK_EQ_INT(audit_checkpoint_check(note, strlen(note), other_pub, &c2, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, ": signed note has no signature by the expected key");
		CHECK_CONTAINS(err.msg, "not signed by gateway key");
		note[strlen(note) - 5] ^= 1;
		CHECK_EQ_INT(audit_checkpoint_check(note, strlen(note), gw_pub, &c2, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "checkpoint at size");
		free(note);
	}

	/* The operator rewrites event 2 and re-signs the whole log with the real key. */
	st2 = fresh_store("since-rewritten.db", path2, sizeof(path2));
	if (st2 != NULL && audit_open(st2, gw_key, &a2, &err) == 0) {
		for (i = 0; i < 9; i++)
			CHECK_EQ_INT(log_event(a2, i == 2 ? 99 : i, &err), 0);
		CHECK_EQ_INT(audit_verify(st2, gw_pub, &rep, &err), 0);
		CHECK_EQ_INT(audit_verify_extends(st2, &saved, &rep, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "does not extend the saved checkpoint at size 6");
		CHECK_CONTAINS(err.msg, "an event below 6 was changed");
	}
	audit_free(a2);
	store_close(st2);

	/* Truncated below the saved size (and regrown): a verified log that no longer holds what was seen. */
	audit_free(a);
	a = NULL;
	CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_events WHERE seq >= 4; DELETE FROM audit_checkpoints "
	    "WHERE size > 4"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(audit_verify_extends(st, &saved, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "the log holds 4 events but the saved checkpoint is for 6");
	CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
	for (i = 0; a != NULL && i < 5; i++)
		CHECK_EQ_INT(log_event(a, 50 + i, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 9);
	CHECK_EQ_INT(audit_verify_extends(st, &saved, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "does not extend the saved checkpoint at size 6");
	audit_free(a);
	store_close(st);
}

static void
test_erase(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct audit_proof *p = NULL;
	struct checkpoint cp;
	struct cg_err err = { 0 };
	unsigned char *buf = NULL;
	char path[256];
	uint64_t n = 99;
	size_t len;
	int t;

	make_log("erase.db", 8, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_erase(a, 2, 5, INT64_MAX, "test retention", &n, &err), 0);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(audit_size(a), 9);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_events WHERE length(event) = 0"), 3);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_erased WHERE erase_event = 8"), 3);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 9);
	CHECK_EQ_INT(rep.erased, 3);
	{
		struct stored_log l;

		CHECK_EQ_INT(stored_log_load(st, &l), 0);
		if (l.n == 9) {
			Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, l.event_len[8], l.event[8]);

			CHECK(e != NULL);
			if (e != NULL) {
				CHECK_STR(e->action, "audit-erase");
				CHECK_STR(e->reason, "test retention");
				CHECK_EQ_INT(e->n_counts, 3);
				crossgate__audit_event__free_unpacked(e, NULL);
			}
		}
		stored_log_free(&l);
	}
	/* Proofs still hold, for erased events by their leaf hash. */
	CHECK_EQ_INT(audit_prove(st, 3, &buf, &len, &err), 0);
	CHECK_EQ_INT(audit_proof_parse(buf, len, &p, &err), 0);
	if (p != NULL) {
		CHECK_EQ_INT(p->erased, 1);
		CHECK_EQ_INT(p->event_len, 0);
		CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), 0);
		p->leaf[0] ^= 1;
		CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
		audit_proof_free(p);
		p = NULL;
	}
	free(buf);
	buf = NULL;
	/* Nothing left in that range; by time, everything but the erase event goes. */
	CHECK_EQ_INT(audit_erase(a, 0, 5, 1000, NULL, &n, &err), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(audit_size(a), 9);
	CHECK_EQ_INT(audit_erase(a, 0, UINT64_MAX, INT64_MAX, NULL, &n, &err), 0);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.erased, 8);
	CHECK_EQ_INT(rep.events, 10);
	CHECK_EQ_INT(audit_erase(a, 3, 3, INT64_MAX, NULL, &n, &err), CG_ERR_ARG);
	audit_free(a);
	store_close(st);

	/* Erasure that was not logged, or not as logged, is caught. */
	for (t = 0; t < 5; t++) {
		static const struct {
			const char *sql, *want;
		} tam[] = {
			{ "UPDATE audit_events SET leaf = zeroblob(32) WHERE seq = 3",
			  "event 3 (erased) does not match the signed checkpoint at size 4" },
			{ "DELETE FROM audit_erased WHERE seq = 3", "event 3 says it is event 0 (moved)" },
			{ "INSERT INTO audit_erased VALUES (6, 8)", "event 6 is listed as erased but still holds its payload" },
			{ "UPDATE audit_erased SET erase_event = 7 WHERE seq = 2", "names event 7 as its erasure" },
			{ "DELETE FROM audit_events WHERE seq = 8; DELETE FROM audit_checkpoints WHERE size = 9",
			  "event 2 was erased, but no audit-erase event accounts for it" },
		};
		char name[32];

		snprintf(name, sizeof(name), "erase-t%d.db", t);
		make_log(name, 8, path, sizeof(path), &st, &a);
		if (a == NULL)
			return;
		CHECK_EQ_INT(audit_erase(a, 2, 5, INT64_MAX, NULL, &n, &err), 0);
		audit_free(a);
		CHECK_EQ_INT(exec_sql(st, tam[t].sql), SQLITE_OK);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, tam[t].want);
		store_close(st);
	}
	/* An extra payload emptied and pointed at the erase event: the count no longer adds up. */
	make_log("erase-count.db", 8, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_erase(a, 2, 5, INT64_MAX, NULL, &n, &err), 0);
	audit_free(a);
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_events SET event = x'' WHERE seq = 6;"
	    "INSERT INTO audit_erased VALUES (6, 8)"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "audit-erase event 8 says it erased 3 events in [2, 5), but 4 events");
	store_close(st);
}

static void
test_cosign(void)
{
	struct store *st, *st2 = NULL;
	struct audit *a = NULL, *a2 = NULL;
	struct keyfile_key *w1 = NULL, *w2 = NULL;
	struct audit_witness wit[3];
	struct cg_err err = { 0 };
	char path[256], path2[256], *s1 = NULL, *s2 = NULL, *s3 = NULL, *note = NULL;
	uint64_t size = 0, wsize;
	size_t got, text_len;
	uint64_t t;
	int i;

	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &w1, &err), 0);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &w2, &err), 0);
	if (w1 == NULL || w2 == NULL)
		goto out;
	snprintf(wit[0].name, sizeof(wit[0].name), "w1.example/a");
	memcpy(wit[0].pub, w1->pub, 32);
	snprintf(wit[1].name, sizeof(wit[1].name), "w2.example/b");
	memcpy(wit[1].pub, w2->pub, 32);
	wit[2] = wit[0];
	make_log("cosign.db", 5, path, sizeof(path), &st, &a);
	if (a == NULL)
		goto out;
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 1, &wsize, &got, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "no checkpoint is cosigned by any of the named witnesses");
	CHECK_EQ_INT(audit_cosign(st, gw_pub, w1, wit[0].name, NULL, 0, 1700000000, &s1, &size, &err), 0);
	CHECK_EQ_INT(size, 5);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 1, &wsize, &got, &err), 0);
	CHECK_EQ_INT(wsize, 5);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 2, &wsize, &got, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "no checkpoint is cosigned by 2 of the named witnesses: at most 1 (checkpoint at size 5)");
	/* Naming a witness twice does not make two. */
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit + 2, 1, 1, &wsize, &got, &err), 0);
	{
		struct audit_witness twice[2] = { wit[0], wit[0] };

		CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, twice, 2, 2, &wsize, &got, &err), CG_ERR_ARG);
		CHECK_CONTAINS(err.msg, "distinct named witnesses (1)");
	}
	/* The state is the checkpoint with the witness's cosignature: both verify. */
	if (s1 != NULL) {
		CHECK_EQ_INT(note_verify_cosignature(s1, strlen(s1), wit[0].name, w1->pub, &text_len, &t, &err), 0);
		CHECK_EQ_INT(t, 1700000000);
		CHECK_EQ_INT(note_verify_cosignature(s1, strlen(s1), wit[1].name, w2->pub, &text_len, &t, &err),
		    CG_ERR_NOTFOUND);
	}
	CHECK_EQ_INT(audit_cosign(st, gw_pub, w2, wit[1].name, NULL, 0, 1700000001, &s2, &size, &err), 0);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 2, &wsize, &got, &err), 0);
	CHECK_EQ_INT(got, 2);
	/* The gateway serves them with its checkpoint. */
	CHECK_EQ_INT(audit_latest_checkpoint(st, 1, &note, &size, &err), 0);
	if (note != NULL) {
		CHECK_EQ_INT(note_verify_cosignature(note, strlen(note), wit[0].name, w1->pub, &text_len, &t, &err), 0);
		CHECK_EQ_INT(note_verify_cosignature(note, strlen(note), wit[1].name, w2->pub, &text_len, &t, &err), 0);
		CHECK_EQ_INT(t, 1700000001);
		free(note);
		note = NULL;
	}

	/* The log grows; w1 cosigns again from its state; the quorum of 2 is still at size 5. */
	for (i = 5; i < 8; i++)
		CHECK_EQ_INT(log_event(a, i, &err), 0);
	CHECK_EQ_INT(audit_cosign(st, gw_pub, w1, wit[0].name, s1, s1 ? strlen(s1) : 0, 1700000100, &s3, &size,
	    &err), 0);
	CHECK_EQ_INT(size, 8);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 2, &wsize, &got, &err), 0);
	CHECK_EQ_INT(wsize, 5);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 1, &wsize, &got, &err), 0);
	CHECK_EQ_INT(wsize, 8);

	/* A witness refuses a rewritten log, even one re-signed with the gateway's real key. */
	st2 = fresh_store("cosign-rewritten.db", path2, sizeof(path2));
	if (st2 != NULL && audit_open(st2, gw_key, &a2, &err) == 0) {
		char *s4 = NULL;

		for (i = 0; i < 9; i++)
			CHECK_EQ_INT(log_event(a2, i == 1 ? 77 : i, &err), 0);
		CHECK_EQ_INT(audit_cosign(st2, gw_pub, w1, wit[0].name, s3, s3 ? strlen(s3) : 0, 1700000200, &s4, &size,
		    &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "not consistent with the checkpoint this witness last cosigned (size 8)");
		CHECK(s4 == NULL);
		CHECK_EQ_INT(query_int(st2, "SELECT count(*) FROM audit_cosignatures"), 0);
		/* ...and a log that went back. */
		CHECK_EQ_INT(exec_sql(st2, "DELETE FROM audit_events WHERE seq >= 6; DELETE FROM audit_checkpoints "
		    "WHERE size > 6"), SQLITE_OK);
		CHECK_EQ_INT(audit_cosign(st2, gw_pub, w1, wit[0].name, s3, s3 ? strlen(s3) : 0, 1700000200, &s4, &size,
		    &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "smaller than the one this witness last cosigned (size 8)");
		CHECK_CONTAINS(err.msg, "rolled back");
		/* A state from another log's key is not this log's. */
		CHECK_EQ_INT(audit_cosign(st2, other_pub, w1, wit[0].name, NULL, 0, 1, &s4, &size, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "the latest checkpoint");
		CHECK_EQ_INT(audit_cosign(st2, gw_pub, gw_pub, wit[0].name, NULL, 0, 1, &s4, &size, &err), CG_ERR_ARG);
		free(s4);
	}

	/* A changed stored cosignature is refused, not skipped. */
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_cosignatures SET line = replace(line, substr(line, -10, 3), 'AAA') "
	    "WHERE size = 5 AND witness = 'w2.example/b'"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify_witnesses(st, gw_pub, wit, 2, 2, &wsize, &got, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "cosignature of the checkpoint at size 5");
out:
	free(s1);
	free(s2);
	free(s3);
	audit_free(a);
	audit_free(a2);
	store_close(st);
	store_close(st2);
	keyfile_free(w1);
	keyfile_free(w2);
}

static void
test_policy_seen(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct stored_log l;
	struct cg_err err = { 0 };
	unsigned char h1[32], h2[32];
	char path[256], want[128], hex[65];

	memset(h1, 0x11, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	make_log("policy.db", 1, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_policy_seen(a, h1, &err), 0);
	CHECK_EQ_INT(audit_size(a), 2);
	CHECK_EQ_INT(audit_policy_seen(a, h1, &err), 0);
	CHECK_EQ_INT(audit_size(a), 2);
	CHECK_EQ_INT(audit_policy_seen(a, h2, &err), 0);
	CHECK_EQ_INT(audit_size(a), 3);
	CHECK_EQ_INT(audit_policy_seen(a, h1, &err), 0);
	CHECK_EQ_INT(audit_size(a), 4);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(stored_log_load(st, &l), 0);
	if (l.n == 4) {
		Crossgate__AuditEvent *e1 = crossgate__audit_event__unpack(NULL, l.event_len[1], l.event[1]);
		Crossgate__AuditEvent *e2 = crossgate__audit_event__unpack(NULL, l.event_len[2], l.event[2]);

		if (e1 != NULL && e2 != NULL) {
			CHECK_STR(e1->action, "policy-load");
			CHECK_STR(e1->actor, "gateway");
			CHECK_STR(e1->reason, "first policy");
			CHECK(e1->policy_hash.len == 32 && memcmp(e1->policy_hash.data, h1, 32) == 0);
			sodium_bin2hex(hex, sizeof(hex), h1, 32);
			snprintf(want, sizeof(want), "previous policy %s", hex);
			CHECK_STR(e2->reason, want);
			CHECK(e2->policy_hash.len == 32 && memcmp(e2->policy_hash.data, h2, 32) == 0);
		} else
			CHECK(!"policy events do not unpack");
		crossgate__audit_event__free_unpacked(e1, NULL);
		crossgate__audit_event__free_unpacked(e2, NULL);
	}
	stored_log_free(&l);
	audit_free(a);
	store_close(st);
}

static void
test_time(void)
{
	static const char *bad[] = { "2024-02-30", "2024-5-1", "yesterday", "2024-05-01T12:00:00", "",
		"2024-05-01T24:00:00Z", "2024-05- 1", "+1714521600", "2024-05-01T12:00:00+01" };
	struct cg_err err = { 0 };
	char out[AUDIT_TIME_MAX];
	int64_t t = -1;
	size_t i;

	CHECK_EQ_INT(audit_parse_time("2024-05-01", &t, &err), 0);
	CHECK_EQ_INT(t, 1714521600);
	CHECK_EQ_INT(audit_parse_time("2024-05-01T12:00:00Z", &t, &err), 0);
	CHECK_EQ_INT(t, 1714564800);
	CHECK_EQ_INT(audit_parse_time("1714564800", &t, &err), 0);
	CHECK_EQ_INT(t, 1714564800);
	audit_format_time(1714564800, out);
	CHECK_STR(out, "2024-05-01T12:00:00Z");
	audit_format_time(0, out);
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(audit_parse_time(bad[i], &t, &err), CG_ERR_ARG);
		CHECK_EQ_INT(t, 0);
		CHECK_CONTAINS(err.msg, "time '");
	}
}

struct walk_arg {
	uint64_t n, erased, next;
};

static int
walk_cb(uint64_t seq, const unsigned char *event, size_t len, int erased, void *arg)
{
	struct walk_arg *w = arg;

	(void)event;
	CHECK_EQ_INT(seq, w->next);
	CHECK(erased ? len == 0 : len > 0);
	w->next = seq + 1;
	w->n++;
	w->erased += erased != 0;
	return seq == 6 ? 7 : 0;
}

static void
test_walk_iter(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct walk_arg w = { 0, 0, 1 };
	struct cg_err err = { 0 };
	char path[256];
	uint64_t n;

	make_log("walk.db", 6, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_erase(a, 2, 4, INT64_MAX, NULL, &n, &err), 0);
	CHECK_EQ_INT(audit_walk(st, 1, walk_cb, &w, &err), 7);
	CHECK_EQ_INT(w.n, 6);
	CHECK_EQ_INT(w.erased, 2);
	CHECK_EQ_INT(audit_stored_size(st, &n, &err), 0);
	CHECK_EQ_INT(n, 7);
	audit_free(a);
	store_close(st);
}

/* A log written before the node table: its nodes are built once, then it grows as any other. */
static void
test_migration(void)
{
	struct store *st;
	struct audit *a = NULL;
	struct audit_report rep;
	struct cg_err err = { 0 };
	char path[256];

	make_log("legacy.db", 11, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	audit_free(a);
	a = NULL;
	CHECK_EQ_INT(exec_sql(st, "DROP TABLE audit_nodes; DROP TABLE audit_meta"), SQLITE_OK);
	CHECK_EQ_INT(audit_open(st, gw_key, &a, &err), 0);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_nodes"), 11 - 3);
	if (a != NULL)
		CHECK_EQ_INT(log_event(a, 11, &err), 0);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 12);
	audit_free(a);
	store_close(st);
}

/* A copy of a log with spans: events inside a span come without a checkpoint. */
struct span_copy {
	struct store *dst;
	int fails;
};

static int
span_copy_cb(const struct audit_record *rec, void *arg)
{
	struct span_copy *c = arg;
	struct cg_err err = { 0 };

	if (audit_import(c->dst, rec, &err) != 0) {
		c->fails++;
		return 0;
	}
	return 0;
}

static void
test_import_spans(void)
{
	struct store *st, *copy = NULL;
	struct audit *a = NULL;
	struct audit_report rep, rep2;
	struct span_copy sc = { NULL, 0 };
	struct cg_err err = { 0 };
	char path[256], cpath[256];
	uint64_t n;
	unsigned char ev[2] = { 0x08, 0x01 };

	bulk_log("span-src.db", 150, 64, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(log_event(a, 1, &err), 0);
	copy = fresh_store("span-copy.db", cpath, sizeof(cpath));
	sc.dst = copy;
	if (copy != NULL) {
		CHECK_EQ_INT(audit_iter(st, 0, span_copy_cb, &sc, &err), 0);
		CHECK_EQ_INT(sc.fails, 0);
		CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
		CHECK_EQ_INT(audit_verify(copy, gw_pub, &rep2, &err), 0);
		CHECK_EQ_INT(rep2.events, 151);
		CHECK_EQ_INT(rep2.checkpoints, 4);
		CHECK(memcmp(rep.root, rep2.root, MERKLE_HASH_LEN) == 0);
		/* an empty event must come as an erased one, with its leaf hash and eraser */
		CHECK_EQ_INT(audit_erase(a, 0, 1, INT64_MAX, NULL, &n, &err), 0);
		CHECK_EQ_INT(import_one(copy, 151, ev, 0, "", &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "event 151 is empty but does not come as an erased event");
		/* the erasure reaches a copy made before it: the events copied then are kept, and verify says so */
		sc.fails = 0;
		CHECK_EQ_INT(audit_iter(st, 151, span_copy_cb, &sc, &err), 0);
		CHECK_EQ_INT(sc.fails, 0);
		CHECK_EQ_INT(audit_verify(copy, gw_pub, &rep2, &err), 0);
		CHECK_EQ_INT(rep2.kept, 1);
		CHECK_EQ_INT(rep2.erased, 0);
	}
	store_close(copy);
	audit_free(a);
	store_close(st);
}

/*
 * Key rotation: the old key vouches for the new one in a checkpoint of its
 * own; verification, proofs and witnesses follow the chain from the first
 * key; the old key cannot append any more; a checkpoint by a key that no
 * verified rotation announced is refused.
 */
static void
test_rotate(void)
{
	struct store *st = NULL;
	struct audit *a = NULL, *a2 = NULL;
	struct audit_report rep;
	struct audit_keychain kc;
	struct audit_proof *p = NULL;
	struct keyfile_key *w = NULL, *w_pub = NULL;
	struct checkpoint cp;
	struct cg_err err = { 0 };
	char path[256], *state = NULL, *line, hex[17];
	unsigned char *buf = NULL;
	size_t len;
	uint64_t size;
	int i;

	make_log("rotate.db", 5, path, sizeof(path), &st, &a);
	if (a == NULL)
		return;
	CHECK_EQ_INT(audit_rotate(a, gw_key, &err), CG_ERR_ARG);
	CHECK_EQ_INT(audit_rotate(a, other_key, &err), 0);
	CHECK_EQ_INT(audit_size(a), 6);
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(log_event(a, i, &err), 0);
	CHECK_EQ_INT(query_int(st, "SELECT count(*) FROM audit_keys WHERE seq = 5"), 1);
	/* The auditor holding the first key follows the rotation. */
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), 0);
	CHECK_EQ_INT(rep.events, 9);
	CHECK_EQ_INT(rep.keys.n, 2);
	CHECK_EQ_INT(rep.keys.keys[1].from, 6);
	CHECK(memcmp(rep.keys.keys[1].pub, other_pub->pub, 32) == 0);
	/* The new key alone does not verify the log from its start. */
	CHECK_EQ_INT(audit_verify(st, other_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "checkpoint at size 1: not signed by gateway key");
	/* The old key is rotated out; the new one appends. */
	CHECK_EQ_INT(audit_open(st, gw_key, &a2, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "was rotated out (key-rotate event 5");
	CHECK_EQ_INT(audit_open(st, other_key, &a2, &err), 0);
	if (a2 != NULL)
		CHECK_EQ_INT(log_event(a2, 9, &err), 0);
	audit_free(a2);
	a2 = NULL;
	CHECK_EQ_INT(audit_keychain_load(st, gw_pub, &kc, &err), 0);
	CHECK_EQ_INT(kc.n, 2);
	/* A proof of an event before the rotation, against a checkpoint by the new key, carries the chain. */
	CHECK_EQ_INT(audit_prove(st, 2, &buf, &len, &err), 0);
	CHECK_EQ_INT(audit_proof_parse(buf, len, &p, &err), 0);
	if (p != NULL) {
		CHECK_EQ_INT(p->n_rotations, 1);
		CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), 0);
		CHECK_EQ_INT(cp.size, 10);
		CHECK_EQ_INT(audit_proof_verify(p, other_pub, &cp, &err), CG_ERR_VERIFY);
		/* without the chain, the new key's checkpoint is not trusted */
		p->n_rotations = 0;
		CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "no verified key-rotate event announced another key");
		p->n_rotations = 1;
		/* a rotation event that is not the proven leaf */
		p->rotations[0].event[p->rotations[0].event_len - 1] ^= 1;
		CHECK_EQ_INT(audit_proof_verify(p, gw_pub, &cp, &err), CG_ERR_VERIFY);
		CHECK_CONTAINS(err.msg, "key-rotate event 5 is not in the tree");
	}
	audit_proof_free(p);
	p = NULL;
	free(buf);
	buf = NULL;
	/* A witness that trusts the first key cosigns the new key's checkpoint; the cosignature is re-checked. */
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &w, &err), 0);
	CHECK_EQ_INT(keyfile_public_of(w, &w_pub, &err), 0);
	if (w != NULL && w_pub != NULL) {
		CHECK_EQ_INT(audit_cosign(st, gw_pub, w, "w.example/1", NULL, 0, 1700000000, &state, &size, &err), 0);
		CHECK_EQ_INT(size, 10);
		if (state != NULL) {
			len = strlen(state);
			for (line = state + len - 1; line > state && line[-1] != '\n'; line--)
				;
			CHECK_EQ_INT(audit_cosignature_add(st, 10, "w.example/1", w_pub->pub, line, &err), 0);
			CHECK_EQ_INT(audit_cosignature_add(st, 9, "w.example/1", w_pub->pub, line, &err), CG_ERR_VERIFY);
			CHECK_EQ_INT(audit_cosignature_add(st, 99, "w.example/1", w_pub->pub, line, &err), CG_ERR_NOTFOUND);
			CHECK_EQ_INT(audit_cosignature_add(st, 10, "w.example/2", w_pub->pub, line, &err), CG_ERR_VERIFY);
			CHECK_CONTAINS(err.msg, "not by witness w.example/2");
		}
	}
	/* Forged: the rotation's checkpoint without the old key's signature. */
	CHECK_EQ_INT(exec_sql(st, "UPDATE audit_checkpoints SET note = substr(note, 1, instr(note, char(10, 10)) + 1) "
	    "|| substr(substr(note, instr(note, char(10, 10)) + 2), instr(substr(note, instr(note, char(10, 10)) + 2), "
	    "char(10)) + 1) WHERE size = 6"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	keyfile_id_hex(gw_pub->id, hex);
	CHECK_CONTAINS(err.msg, "checkpoint at size 6: not signed by gateway key");
	CHECK_CONTAINS(err.msg, hex);
	/* The key index must match the events. */
	CHECK_EQ_INT(exec_sql(st, "DELETE FROM audit_keys"), SQLITE_OK);
	CHECK_EQ_INT(audit_verify(st, gw_pub, &rep, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "key-rotate event 5 is missing from the key index");
	free(state);
	keyfile_free(w);
	keyfile_free(w_pub);
	audit_free(a);
	store_close(st);
}

int
main(void)
{
	if (audit_fixture_init("test-audit-tree") != 0)
		CGT_DONE();
	test_proof_property();
	test_append_many();
	test_concurrent();
	test_prove_files();
	test_since();
	test_erase();
	test_cosign();
	test_policy_seen();
	test_time();
	test_walk_iter();
	test_migration();
	test_import_spans();
	test_rotate();
	audit_fixture_done();
	CGT_DONE();
}

/*
 * bench_audit.c - the audit log at scale, against baselines measured in the
 * same run on the same bytes:
 *
 *   build    audit_append_many() of N gateway-like events, 1,000 per signed
 *            checkpoint                              vs SHA-256 of the same event bytes
 *   append   audit_log() at N events: one event, one transaction (fsync) and
 *            one signed checkpoint each, vs the same on a 1,000-event log (O(log n))
 *   proof    audit_inclusion_proof / audit_consistency_proof / audit_prove at N
 *            (random indices, from the stored nodes)
 *   verify   audit_verify() of the whole log         vs SHA-256 of the same event bytes
 *
 * usage: bench_audit DIR [EVENTS]   (EVENTS: default 10,000,000)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "crypto/keyfile.h"
#include "crypto/merkle.h"
#include "bench/bench.h"
#include "audit/audit.h"
#include "store/store.h"

#define CHUNK 1000



/* An ingest event as the gateway writes it: ids, digests, policy hash, counts (no data). */
struct evbuf {
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry c[2], *cp[2];
	unsigned char batch_id[16], digest[32], policy[32];
};

static void
evbuf_fill(struct evbuf *b, uint64_t i)
{
	crossgate__audit_event__init(&b->ev);
	crossgate__audit_event__counts_entry__init(&b->c[0]);
	crossgate__audit_event__counts_entry__init(&b->c[1]);
	memset(b->policy, 0x5a, sizeof(b->policy));
	memcpy(b->batch_id, &i, sizeof(i));
	memset(b->batch_id + 8, 0x11, 8);
	crypto_hash_sha256(b->digest, b->batch_id, sizeof(b->batch_id));
	b->c[0].key = (char *)"records";
	b->c[0].value = 1000 + i % 50000;
	b->c[1].key = (char *)"skipped_revoked";
	b->c[1].value = i % 7;
	b->cp[0] = &b->c[0];
	b->cp[1] = &b->c[1];
	b->ev.actor = (char *)"gateway";
	b->ev.action = (char *)"ingest";
	b->ev.outcome = (char *)"ok";
	b->ev.partner_id = (char *)(i % 2 ? "k" : "g");
	b->ev.batch_id.data = b->batch_id;
	b->ev.batch_id.len = sizeof(b->batch_id);
	b->ev.batch_digest.data = b->digest;
	b->ev.batch_digest.len = sizeof(b->digest);
	b->ev.policy_hash.data = b->policy;
	b->ev.policy_hash.len = sizeof(b->policy);
	b->ev.counts = b->cp;
	b->ev.n_counts = 2;
}

static struct store *
fresh(const char *dir, const char *name, char *path, size_t size)
{
	struct store *st = NULL;
	struct cg_err e;
	char p[4200];

	snprintf(path, size, "%s/%s", dir, name);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	if (store_open(path, STORE_OPEN_CREATE, &st, &e) != 0)
		bench_die(path, &e);
	return st;
}

/* audit_log() rate: one event per transaction, as the server logs. */
static double
log_rate(struct audit *a, int n)
{
	struct evbuf b;
	struct cg_err e;
	double t = bench_now();
	int i;

	for (i = 0; i < n; i++) {
		evbuf_fill(&b, (uint64_t)i);
		if (audit_log(a, &b.ev, &e) != 0)
			bench_die("audit_log", &e);
	}
	return n / (bench_now() - t);
}

int
main(int argc, char **argv)
{
	static struct evbuf bufs[CHUNK];
	Crossgate__AuditEvent *evs[CHUNK];
	struct keyfile_key *key = NULL, *pub = NULL;
	struct store *st, *small;
	struct audit *a = NULL, *sa = NULL;
	struct audit_report rep;
	struct cg_err e;
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH_LEN], h[32], *pf, *sample = NULL;
	char path[4096], spath[4096];
	uint64_t n = 10000000, i, done = 0, bytes = 0, sample_bytes = 0, sample_n;
	size_t len, k, *sample_len = NULL;
	double t, t_build, t_sha, sha_rate, t_verify, r_big, r_small, t_incl, t_cons, t_prove;
	int j;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_audit DIR [EVENTS]\n");
		return 2;
	}
	if (argc == 3)
		n = strtoull(argv[2], NULL, 10);
	if (sodium_init() < 0 || n < CHUNK)
		return 1;
	if (keyfile_generate(KEYFILE_ED25519_SECRET, &key, &e) != 0 || keyfile_public_of(key, &pub, &e) != 0)
		bench_die("key", &e);

	/* Baseline first: SHA-256 of the same event bytes, one call per event. */
	sample_n = n < 1000000 ? n : 1000000;
	if ((sample = malloc(sample_n * 200)) == NULL || (sample_len = malloc(sample_n * sizeof(size_t))) == NULL)
		bench_die("malloc", NULL);
	for (i = 0; i < sample_n; i++) {
		struct evbuf b;

		evbuf_fill(&b, i);
		b.ev.seq = i;
		b.ev.time = 1700000000 + (int64_t)i;
		sample_len[i] = protobuf_c_message_get_packed_size(&b.ev.base);
		protobuf_c_message_pack(&b.ev.base, sample + sample_bytes);
		sample_bytes += sample_len[i];
	}
	t = bench_now();
	for (i = 0, len = 0; i < sample_n; i++) {
		crypto_hash_sha256(h, sample + len, sample_len[i]);
		len += sample_len[i];
	}
	t_sha = bench_now() - t;
	sha_rate = (double)sample_bytes / t_sha;
	printf("baseline  SHA-256 of each event: %.0f events/s, %.1f MB/s (%llu events of ~%.0f bytes)\n",
	    sample_n / t_sha, sha_rate / 1e6, (unsigned long long)sample_n, (double)sample_bytes / sample_n);

	/* Build the log. */
	st = fresh(argv[1], "audit.db", path, sizeof(path));
	if (audit_open(st, key, &a, &e) != 0)
		bench_die("audit_open", &e);
	t = bench_now();
	while (done < n) {
		k = (size_t)(n - done < CHUNK ? n - done : CHUNK);
		for (j = 0; j < (int)k; j++) {
			evbuf_fill(&bufs[j], done + (uint64_t)j);
			evs[j] = &bufs[j].ev;
		}
		if (audit_append_many(a, evs, k, &e) != 0)
			bench_die("audit_append_many", &e);
		done += k;
	}
	t_build = bench_now() - t;
	bytes = (uint64_t)((double)sample_bytes / sample_n * n);
	printf("build     %.0f events/s appending %llu events, %d per signed checkpoint (%.1f s)\n", n / t_build,
	    (unsigned long long)n, CHUNK, t_build);
	printf("          ratio %.1f%% of the SHA-256 rate of the same bytes\n",
	    100.0 * (n / t_build) / (sample_n / t_sha));
	if (store_checkpoint(st, &e) != 0)
		bench_die("checkpoint", &e);

	/* Append one event per transaction, at n and on a small log. */
	small = fresh(argv[1], "audit-small.db", spath, sizeof(spath));
	if (audit_open(small, key, &sa, &e) != 0)
		bench_die("audit_open", &e);
	(void)log_rate(sa, 1000);
	r_small = log_rate(sa, 300);
	r_big = log_rate(a, 300);
	printf("append    %.0f events/s at %llu events (audit_log: a transaction, an fsync and a signed checkpoint "
	    "each)\n", r_big, (unsigned long long)n);
	printf("          %.0f events/s on a 1,000-event log: ratio %.2f (O(log n) append: ~1)\n", r_small,
	    r_big / r_small);
	audit_free(sa);
	store_close(small);
	unlink(spath);

	/* Reopening is O(log n): no rehash of the log. */
	audit_free(a);
	a = NULL;
	t = bench_now();
	if (audit_open(st, key, &a, &e) != 0)
		bench_die("audit_open", &e);
	printf("open      %.2f ms to reopen the %llu-event log (restore + check against the signed root)\n",
	    (bench_now() - t) * 1e3, (unsigned long long)audit_size(a));

	/* Proofs from stored nodes. */
	n = audit_size(a);
	t = bench_now();
	for (j = 0; j < 1000; j++)
		if (audit_inclusion_proof(st, randombytes_uniform((uint32_t)n), n, proof, &len, &e) != 0)
			bench_die("inclusion proof", &e);
	t_incl = (bench_now() - t) / 1000;
	t = bench_now();
	for (j = 0; j < 1000; j++)
		if (audit_consistency_proof(st, 1 + randombytes_uniform((uint32_t)n), n, proof, &len, &e) != 0)
			bench_die("consistency proof", &e);
	t_cons = (bench_now() - t) / 1000;
	t = bench_now();
	for (j = 0; j < 200; j++) {
		if (audit_prove(st, randombytes_uniform((uint32_t)n), &pf, &len, &e) != 0)
			bench_die("prove", &e);
		free(pf);
	}
	t_prove = (bench_now() - t) / 200;
	printf("proof     %.3f ms per inclusion proof, %.3f ms per consistency proof, %.3f ms per proof file "
	    "(target < 1 ms)\n", t_incl * 1e3, t_cons * 1e3, t_prove * 1e3);

	/* Full verification. */
	t = bench_now();
	if (audit_verify(st, pub, &rep, &e) != 0)
		bench_die("verify", &e);
	t_verify = bench_now() - t;
	printf("verify    %.0f events/s, %.1f MB/s of event bytes: %llu events, %llu checkpoints in %.1f s\n",
	    rep.events / t_verify, (double)bytes / t_verify / 1e6, (unsigned long long)rep.events,
	    (unsigned long long)rep.checkpoints, t_verify);
	printf("          ratio %.1f%% of raw SHA-256 throughput over the same bytes (target >= 50%%)\n",
	    100.0 * ((double)bytes / t_verify) / sha_rate);

	audit_free(a);
	store_close(st);
	keyfile_free(key);
	keyfile_free(pub);
	free(sample);
	free(sample_len);
	return 0;
}

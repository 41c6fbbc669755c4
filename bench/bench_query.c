/*
 * bench_query.c - DP aggregates: a grouped sum over a store of N joined
 * subjects (default 1,000,000), through the gateway's query path (join,
 * sequential scan, records opened on every core, group-by, noise), against
 * a raw baseline over the same store in the same run: one sequential scan
 * of the records table, every record's AEAD opened against its associated
 * data (libsodium ChaCha20-Poly1305), on a thread per core while the scan
 * reads on.  Both as records opened per second.  (The samplers' draws per
 * second: bench_noise.c.)
 *
 * usage: bench_query DEMO_DIR   (keys and policy of a demo directory; the
 * data is generated here so that every person is on both platforms)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "bench/bench.h"
#include "agent/pack.h"
#include "base/workers.h"
#include "crypto/seal.h"
#include "synth/synth.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/budget.h"
#include "gateway/ingest.h"
#include "gateway/join.h"
#include "gateway/query.h"
#include "store/store.h"
#include "policy/policy.h"

/* Peak resident memory since the last reset, in MiB, from /proc (0 if unknown). */
static double
rss_peak_mib(void)
{
	char line[256];
	double kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtod(line + 6, NULL);
	fclose(f);
	return kb / 1024;
}

/* Reset the peak to the current resident size (Linux >= 4.0), so the next peak is one stage's. */
static void
rss_peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

/*
 * The baseline.  The scan thread copies each row's sealed fields into a
 * chunk; a worker per core builds the associated data and opens the AEAD
 * (verify, then decrypt) while the scan fills the next chunk.
 */
#define BASE_CHUNK 8192u
#define BASE_TASK 512u

struct base_row {
	unsigned char tok[2][TOKEN_LEN];
	uint8_t has[2];
	uint32_t bits;
	int64_t at;
	uint64_t idx;
	int side;
	size_t key, off, len;
};

struct base_chunk {
	struct base_row *row;
	size_t n;
	unsigned char *ct;
	size_t used, cap;
};

struct base {
	struct base_chunk ch[2], *job;
	unsigned char (*keys)[32];           /* the batch keys, unwrapped once */
	unsigned char (*bid)[16];
	const char *partner[2];
	unsigned char *pt[WORKERS_MAX];      /* per worker */
	uint64_t opened;
};

static int
base_task(void *arg, size_t task, unsigned worker)
{
	struct base *b = arg;
	struct base_chunk *c = b->job;
	size_t i = task * BASE_TASK, end = i + BASE_TASK < c->n ? i + BASE_TASK : c->n;

	for (; i < end; i++) {
		const struct base_row *r = &c->row[i];
		unsigned char ad[SEAL_AD_MAX], nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
		struct token t[2];
		size_t nt = 0, ad_len, k;

		for (k = 0; k < 2; k++)
			if (r->has[k]) {
				t[nt].kind = k == 0 ? TOKEN_KIND_EMAIL : TOKEN_KIND_PHONE;
				memcpy(t[nt++].value, r->tok[k], TOKEN_LEN);
			}
		if (r->len < SEAL_TAG_LEN || seal_ad_build(ad, &ad_len, b->bid[r->key], b->partner[r->side], r->idx,
		    r->bits, r->at, t, nt) != 0)
			return CG_ERR_FORMAT;
		memset(nonce, 0, sizeof(nonce));
		for (k = 0; k < 8; k++)
			nonce[k] = (unsigned char)(r->idx >> (8 * k));
		if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(b->pt[worker], NULL, c->ct + r->off,
		    r->len - SEAL_TAG_LEN, c->ct + r->off + r->len - SEAL_TAG_LEN, ad, ad_len, nonce, b->keys[r->key]) != 0)
			return CG_ERR_CRYPTO;
	}
	return 0;
}

/* Scan the whole records table of `st` and open every record of the two partners; returns the records opened. */
static uint64_t
base_run(struct store *st, const struct keyfile_key *storage, unsigned threads)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *q = NULL;
	struct workers *pool = NULL;
	struct base b;
	struct base_chunk *fill;
	int64_t maxid = 0;
	size_t *key_of = NULL, nk = 0, i;
	struct cg_err e;
	unsigned w;

	memset(&b, 0, sizeof(b));
	b.partner[0] = "k";
	b.partner[1] = "g";
	/* every batch key, unwrapped up front (rowids are dense here: one batch per ingest) */
	if (sqlite3_prepare_v2(db, "SELECT max(id), count(*) FROM batches", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW)
		bench_die("baseline batches", NULL);
	maxid = sqlite3_column_int64(q, 0);
	nk = (size_t)sqlite3_column_int64(q, 1);
	sqlite3_finalize(q);
	if ((key_of = calloc((size_t)maxid + 1, sizeof(*key_of))) == NULL || (b.keys = calloc(nk + 1, 32)) == NULL ||
	    (b.bid = calloc(nk + 1, 16)) == NULL)
		bench_die("baseline", NULL);
	if (sqlite3_prepare_v2(db, "SELECT id, batch_id, wrapped_key FROM batches ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		bench_die("baseline batches", NULL);
	for (i = 0; sqlite3_step(q) == SQLITE_ROW && i < nk; i++) {
		key_of[sqlite3_column_int64(q, 0)] = i;
		memcpy(b.bid[i], sqlite3_column_blob(q, 1), 16);
		if (ingest_unwrap_batch_key(storage, b.bid[i], sqlite3_column_blob(q, 2),
		    (size_t)sqlite3_column_bytes(q, 2), b.keys[i], &e) != 0)
			bench_die("baseline unwrap", &e);
	}
	sqlite3_finalize(q);

	if (workers_new(threads, &pool, &e) != 0)
		bench_die("baseline workers", &e);
	for (w = 0; w < threads; w++)
		if ((b.pt[w] = malloc(1 << 16)) == NULL)
			bench_die("baseline", NULL);
	for (i = 0; i < 2; i++)
		if ((b.ch[i].row = malloc(BASE_CHUNK * sizeof(*b.ch[i].row))) == NULL ||
		    (b.ch[i].ct = malloc(b.ch[i].cap = 1 << 22)) == NULL)
			bench_die("baseline", NULL);
	if (sqlite3_prepare_v2(db, "SELECT partner, batch, idx, email_token, phone_token, consent_bits, consent_at, "
	    "payload FROM records ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		bench_die("baseline scan", NULL);
	fill = &b.ch[0];
	for (;;) {
		int more = sqlite3_step(q) == SQLITE_ROW;
		if (more) {
			const char *p = (const char *)sqlite3_column_text(q, 0);
			struct base_row *r = &fill->row[fill->n];
			size_t len = (size_t)sqlite3_column_bytes(q, 7);
			int k;

			r->side = strcmp(p, "k") == 0 ? 0 : strcmp(p, "g") == 0 ? 1 : -1;
			if (r->side < 0)
				continue;
			if (fill->used + len > fill->cap || len > (1 << 16))
				bench_die("baseline: payload too large for the bench's buffers", NULL);
			r->key = key_of[sqlite3_column_int64(q, 1)];
			r->idx = (uint64_t)sqlite3_column_int64(q, 2);
			for (k = 0; k < 2; k++) {
				r->has[k] = sqlite3_column_bytes(q, 3 + k) == TOKEN_LEN;
				if (r->has[k])
					memcpy(r->tok[k], sqlite3_column_blob(q, 3 + k), TOKEN_LEN);
			}
			r->bits = (uint32_t)sqlite3_column_int64(q, 5);
			r->at = sqlite3_column_int64(q, 6);
			r->off = fill->used;
			r->len = len;
			memcpy(fill->ct + fill->used, sqlite3_column_blob(q, 7), len);
			fill->used += len;
			fill->n++;
		}
		if (fill->n == BASE_CHUNK || (!more && fill->n > 0)) {
			if (b.job != NULL && workers_wait(pool) != 0)
				bench_die("baseline: a record does not verify", NULL);
			b.job = fill;
			b.opened += fill->n;
			workers_start(pool, (fill->n + BASE_TASK - 1) / BASE_TASK, base_task, &b);
			fill = fill == &b.ch[0] ? &b.ch[1] : &b.ch[0];
			fill->n = fill->used = 0;
		}
		if (!more)
			break;
	}
	if (b.job != NULL && workers_wait(pool) != 0)
		bench_die("baseline: a record does not verify", NULL);
	sqlite3_finalize(q);
	workers_free(pool);
	for (w = 0; w < threads; w++)
		free(b.pt[w]);
	for (i = 0; i < 2; i++) {
		free(b.ch[i].row);
		free(b.ch[i].ct);
	}
	sodium_memzero(b.keys, (nk + 1) * 32);
	free(b.keys);
	free(b.bid);
	free(key_of);
	return b.opened;
}

int
main(int argc, char **argv)
{
	const char *dir, *env = getenv("BENCH_QUERY_SUBJECTS");
	char path[4400], data[4200], db[4200], out[4200];
	struct policy *pol = NULL;
	struct keyfile_key *storage;
	struct synth_truth truth;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err e;
	struct query_spec q;
	struct query_stats qs;
	uint64_t subjects = env ? strtoull(env, NULL, 10) : 1000000;
	double t_query, t_base, r_query, r_base, rss_base, rss_query;
	uint64_t opened;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_query DEMO_DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	dir = argv[1];
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	if (policy_load(path, &pol, NULL, &e) != 0)
		bench_die(path, &e);
	storage = bench_key(dir, "gateway/storage.key", KEYFILE_STORAGE);

	/* Everyone on both platforms, consenting to analytics: `subjects` joined subjects. */
	snprintf(data, sizeof(data), "%s/query-data", dir);
	snprintf(db, sizeof(db), "%s/query.db", dir);
	snprintf(out, sizeof(out), "%s/query-out.csv", dir);
	bench_joined_store(dir, data, db, pol, subjects, &st, &a, &truth.matched);
	/*
	 * As `crossgate gateway ingest` leaves it: the WAL checkpointed into the
	 * database file (a scan through a WAL of the whole table looks up every
	 * page in its index, and slows the query and the baseline alike).
	 */
	if (store_checkpoint(st, &e) != 0)
		bench_die("checkpoint", &e);

	/* The query: a noisy sum of course spend by region and course category. */
	memset(&q, 0, sizeof(q));
	q.pol = pol;
	q.purpose = "analytics";
	q.group_by[q.ngroup++] = "region";
	q.group_by[q.ngroup++] = "k_top_course_category";
	if (query_metric_parse("sum:k_course_spend_cents", &q.metrics[q.nmetrics++], &e) != 0)
		bench_die("metric", &e);
	q.analyst = policy_principal_by_name(pol, "analyst");
	q.out_path = out;
	q.storage = storage;
	rss_base = rss_peak_mib();
	rss_peak_reset();
	t_query = bench_now();
	if (query_run(st, a, &q, &qs, &e) != 0)
		bench_die("query", &e);
	t_query = bench_now() - t_query;
	rss_query = rss_peak_mib();

	t_base = bench_now();
	opened = base_run(st, storage, workers_cpus());
	t_base = bench_now() - t_base;

	/* The query opens both records of each joined subject. */
	r_query = 2.0 * (double)truth.matched / t_query;
	r_base = (double)opened / t_base;
	printf("query   %.2f s for a noisy grouped sum over %llu joined subjects (%llu groups, %llu released): "
	    "join %.2f s (scan+open %.2f s, pairing %.2f s), decode+aggregate %.2f s, charge+noise+write %.3f s\n", t_query,
	    (unsigned long long)truth.matched, (unsigned long long)qs.groups, (unsigned long long)qs.released,
	    qs.join_seconds, qs.load_seconds, qs.join_seconds - qs.load_seconds, qs.collect_seconds, qs.release_seconds);
	printf("        %.0f records/s (both records of each subject, opened and verified, on %u threads); "
	    "peak RSS during the query %.0f MiB (%.0f MiB before it)\n", r_query, workers_cpus(), rss_query, rss_base);
	printf("        baseline %.2f s: one sequential scan of the %llu stored records, each AEAD opened against its "
	    "associated data on %u threads: %.0f records/s\n", t_base, (unsigned long long)opened, workers_cpus(), r_base);
	printf("        ratio %.2f of the raw scan's records/s (target at least 0.50)\n", r_query / r_base);

	unlink(out);
	snprintf(path, sizeof(path), "%s.meta.json", out);
	unlink(path);
	audit_free(a);
	store_close(st);
	unlink(db);
	keyfile_free(storage);
	policy_free(pol);
	return 0;
}

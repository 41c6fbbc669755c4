/*
 * bench_pipeline.c - the file pipeline's stages against baselines measured in
 * the same run on the same data:
 *
 *   agent   pack_csv() records/s   vs raw libsodium HMAC-SHA-256 + ChaCha20-Poly1305
 *                                     of the same records (same token count and payload sizes)
 *   ingest  ingest_batch_file()    vs a raw SQLite bulk insert of the same rows
 *   join    the export's join      vs a plain in-memory hash join of the same tokens
 *   memory  peak RSS of an export process, per million subjects
 *
 * usage: bench_pipeline DEMO_DIR   (a directory made by `crossgate demo`)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "bench/bench.h"
#include "agent/pack.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/export.h"
#include "gateway/ingest.h"
#include "store/store.h"
#include "policy/policy.h"
#include "proto/batch.h"




/* One record as the baselines need it. */
struct rec {
	uint8_t ntok;
	unsigned char tok[2][32];
	uint32_t bits;
	int64_t at;
	unsigned char *ct;
	size_t ct_len;
};

static struct rec *
read_batch(const char *path, const struct policy_partner *pp, size_t *n)
{
	struct batch_reader *br = NULL;
	Crossgate__SealedRecord *sr;
	struct rec *v = NULL;
	unsigned char digest[32];
	uint64_t count, i = 0;
	struct cg_err e;

	if (batch_reader_open(path, &br, &e) != 0 || batch_reader_verify(br, pp->signing_pub, &count, digest, &e) != 0)
		bench_die(path, &e);
	if ((v = calloc(count + 1, sizeof(*v))) == NULL)
		bench_die("calloc", NULL);
	while (batch_reader_next(br, &sr, &e) == 1) {
		v[i].ntok = (uint8_t)sr->n_tokens;
		for (size_t t = 0; t < sr->n_tokens && t < 2; t++)
			memcpy(v[i].tok[t], sr->tokens[t]->value.data, 32);
		v[i].bits = sr->consent_bits;
		v[i].at = sr->consent_at;
		v[i].ct_len = sr->ciphertext.len;
		if ((v[i].ct = malloc(sr->ciphertext.len)) == NULL)
			bench_die("malloc", NULL);
		memcpy(v[i].ct, sr->ciphertext.data, sr->ciphertext.len);
		i++;
	}
	batch_reader_free(br);
	*n = i;
	return v;
}

/* Raw crypto of the same records: one HMAC per token over a typical normalized id, one AEAD seal. */
static double
baseline_crypto(const struct rec *v, size_t n)
{
	unsigned char k[32], out[32], nonce[12] = { 0 }, *ct = malloc(70000);
	static const char id[] = "someone.example@gmail.com";   /* 25 bytes: a typical normalized email */
	crypto_auth_hmacsha256_state st;
	double t;
	size_t i;

	randombytes_buf(k, sizeof(k));
	t = bench_now();
	for (i = 0; i < n; i++) {
		for (int j = 0; j < v[i].ntok; j++) {
			crypto_auth_hmacsha256_init(&st, k, sizeof(k));
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, sizeof(id) - 1);
			crypto_auth_hmacsha256_final(&st, out);
		}
		memcpy(nonce, &i, sizeof(i));
		crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, v[i].ct, v[i].ct_len - 16, NULL, 0, NULL, nonce, k);
	}
	t = bench_now() - t;
	free(ct);
	return t;
}

/* Raw SQLite bulk insert of the same rows into the same table shape. */
static double
baseline_sqlite(const char *path, const struct rec *v, size_t n)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	double t;
	size_t i;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "CREATE TABLE records(id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, partner TEXT NOT NULL,"
	    " idx INTEGER NOT NULL, email_token BLOB, phone_token BLOB, consent_bits INTEGER NOT NULL,"
	    " consent_at INTEGER NOT NULL, payload BLOB NOT NULL)", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO records(batch, partner, idx, email_token, phone_token, consent_bits,"
	    " consent_at, payload) VALUES (1, 'k', ?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench: sqlite: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	t = bench_now();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)i);
		sqlite3_bind_blob(s, 2, v[i].tok[0], 32, SQLITE_STATIC);
		if (v[i].ntok > 1)
			sqlite3_bind_blob(s, 3, v[i].tok[1], 32, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 3);
		sqlite3_bind_int64(s, 4, v[i].bits);
		sqlite3_bind_int64(s, 5, v[i].at);
		sqlite3_bind_blob(s, 6, v[i].ct, (int)v[i].ct_len, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			fprintf(stderr, "bench: sqlite insert: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_reset(s);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	t = bench_now() - t;
	sqlite3_finalize(s);
	sqlite3_close(db);
	return t;
}

/* A plain in-memory hash join of two token lists (email, then phone). */
static double
baseline_join(struct store_ref *l, size_t nl, struct store_ref *r, size_t nr, uint64_t *matches)
{
	size_t cap = 16, mask, i, s;
	uint32_t *tab;
	double t;

	while (cap < nr * 2 + 16)
		cap *= 2;
	mask = cap - 1;
	tab = malloc(cap * sizeof(*tab));
	t = bench_now();
	*matches = 0;
	for (int pass = 0; pass < 2; pass++) {
		memset(tab, 0xff, cap * sizeof(*tab));
		for (i = 0; i < nr; i++) {
			const unsigned char *k = pass ? r[i].phone : r[i].email;
			uint64_t h;
			if (!(pass ? r[i].has_phone : r[i].has_email))
				continue;
			memcpy(&h, k, 8);
			for (s = h & mask; tab[s] != UINT32_MAX; s = (s + 1) & mask)
				;
			tab[s] = (uint32_t)i;
		}
		for (i = 0; i < nl; i++) {
			const unsigned char *k = pass ? l[i].phone : l[i].email;
			uint64_t h;
			if (!(pass ? l[i].has_phone : l[i].has_email))
				continue;
			memcpy(&h, k, 8);
			for (s = h & mask; tab[s] != UINT32_MAX; s = (s + 1) & mask) {
				const struct store_ref *o = &r[tab[s]];
				if (memcmp(pass ? o->phone : o->email, k, 32) == 0) {
					(*matches)++;
					break;
				}
			}
		}
	}
	t = bench_now() - t;
	free(tab);
	return t;
}

int
main(int argc, char **argv)
{
	const char *dir;
	char policy_path[4096], csv[4096], batch[4096], db[4096], rawdb[4096], out[4096], path[4200];
	struct policy *pol = NULL;
	struct keyfile_key *match, *ksign, *gwpub, *gwenc, *gwsign, *storage;
	struct pack_opts po;
	struct pack_stats ps;
	struct cg_err e;
	struct rec *recs;
	size_t nrec, i;
	double t_pack, t_crypto, t_ingest, t_sql, t_hash;
	int pipefd[2];
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_pipeline DEMO_DIR\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	dir = argv[1];
	snprintf(policy_path, sizeof(policy_path), "%s/policy.yaml", dir);
	snprintf(csv, sizeof(csv), "%s/data/k_users.csv", dir);
	snprintf(batch, sizeof(batch), "%s/bench-k.batch", dir);
	snprintf(db, sizeof(db), "%s/bench.db", dir);
	snprintf(rawdb, sizeof(rawdb), "%s/bench-raw.db", dir);
	snprintf(out, sizeof(out), "%s/bench-export.csv", dir);
	if (policy_load(policy_path, &pol, NULL, &e) != 0)
		bench_die(policy_path, &e);
	match = bench_key(dir, "match.key", KEYFILE_MATCH);
	ksign = bench_key(dir, "k/sign.key", KEYFILE_ED25519_SECRET);
	gwpub = bench_key(dir, "gateway/enc.pub", KEYFILE_X25519_PUBLIC);
	gwenc = bench_key(dir, "gateway/enc.key", KEYFILE_X25519_SECRET);
	gwsign = bench_key(dir, "gateway/sign.key", KEYFILE_ED25519_SECRET);
	storage = bench_key(dir, "gateway/storage.key", KEYFILE_STORAGE);

	/* agent */
	memset(&po, 0, sizeof(po));
	po.pol = pol; po.partner_id = "k"; po.input = csv; po.output = batch;
	po.match = match; po.sign = ksign; po.gateway = gwpub;
	t_pack = bench_now();
	if (pack_csv(&po, &ps, &e) != 0)
		bench_die("pack", &e);
	t_pack = bench_now() - t_pack;
	recs = read_batch(batch, policy_partner_find(pol, "k"), &nrec);
	t_crypto = baseline_crypto(recs, nrec);
	printf("agent   %9.0f records/s (%llu rows read, %zu records in %.2f s)\n", (double)nrec / t_pack,
	    (unsigned long long)ps.rows, nrec, t_pack);
	printf("        %9.0f records/s raw HMAC-SHA-256 + ChaCha20-Poly1305 of the same records\n",
	    (double)nrec / t_crypto);
	printf("        ratio %.1f%% of the raw crypto rate (target >= 40%%)\n", 100.0 * t_crypto / t_pack);

	/* ingest */
	{
		struct store *st;
		struct audit *a;
		struct ingest_keys ik = { gwenc, storage };
		struct ingest_result res;
		unlink(db);
		snprintf(path, sizeof(path), "%s-wal", db); unlink(path);
		if (store_open(db, STORE_OPEN_CREATE, &st, &e) != 0 || audit_open(st, gwsign, &a, &e) != 0)
			bench_die(db, &e);
		t_ingest = bench_now();
		if (ingest_batch_file(st, a, pol, &ik, batch, &res, &e) != 0)
			bench_die("ingest", &e);
		t_ingest = bench_now() - t_ingest;
		audit_free(a);
		store_close(st);
	}
	t_sql = baseline_sqlite(rawdb, recs, nrec);
	printf("ingest  %9.0f rows/s (%zu rows in %.2f s: verify, open, check, insert, audit)\n",
	    (double)nrec / t_ingest, nrec, t_ingest);
	printf("        %9.0f rows/s raw SQLite bulk insert of the same rows (one transaction)\n",
	    (double)nrec / t_sql);
	printf("        ratio %.1f%% of raw SQLite (target >= 50%%)\n", 100.0 * t_sql / t_ingest);
	for (i = 0; i < nrec; i++)
		free(recs[i].ct);
	free(recs);

	/* join + export in a child, so its peak memory is its own */
	snprintf(path, sizeof(path), "%s/gateway.db", dir);
	if (pipe(pipefd) != 0 || (pid = fork()) < 0)
		bench_die("fork", NULL);
	if (pid == 0) {
		struct store *st;
		struct audit *a;
		struct export_opts o;
		struct export_stats es;
		double t;
		close(pipefd[0]);
		memset(&o, 0, sizeof(o));
		o.pol = pol; o.purpose = "analytics"; o.out_path = out; o.storage = storage; o.analyst = policy_principal_by_name(pol, "analyst");
		if (store_open(path, 0, &st, &e) != 0 || audit_open(st, gwsign, &a, &e) != 0)
			bench_die(path, &e);
		t = bench_now();
		if (export_run(st, a, &o, &es, &e) != 0)
			bench_die("export", &e);
		t = bench_now() - t;
		if (write(pipefd[1], &es, sizeof(es)) != (ssize_t)sizeof(es) || write(pipefd[1], &t, sizeof(t)) != sizeof(t))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	{
		struct export_stats es;
		struct rusage ru;
		struct store *st;
		struct store_ref *l, *r;
		size_t nl, nr;
		uint64_t m;
		double t_export;
		int status;
		if (read(pipefd[0], &es, sizeof(es)) != (ssize_t)sizeof(es) ||
		    read(pipefd[0], &t_export, sizeof(t_export)) != sizeof(t_export))
			bench_die("export child", NULL);
		if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bench_die("export child", NULL);
		if (store_open(path, 0, &st, &e) != 0 || store_refs_load(st, "k", &l, &nl, &e) != 0 ||
		    store_refs_load(st, "g", &r, &nr, &e) != 0)
			bench_die(path, &e);
		t_hash = baseline_join(l, nl, r, nr, &m);
		printf("join    %.3f s grouping and pairing %zu x %zu records in memory (+ %.3f s reading them)\n",
		    es.join_seconds, nl, nr, es.load_seconds);
		printf("        %.3f s plain in-memory hash join of the same email and phone tokens\n", t_hash);
		printf("        ratio %.1fx the plain hash join (target within 3x)\n", es.join_seconds / t_hash);
		printf("export  %.2f s in all: %llu synthetic rows (reading %.2f s, fit %.2f s, drawing and writing %.2f s)\n",
		    t_export, (unsigned long long)es.rows, es.collect_seconds, es.fit_seconds, es.sample_seconds);
		printf("memory  %.0f MiB peak for the export of %zu + %zu records = %.0f MiB per million subjects "
		    "(target < 1024)\n", ru.ru_maxrss / 1024.0, nl, nr,
		    ru.ru_maxrss / 1024.0 / ((double)(nl > nr ? nl : nr) / 1e6));
		free(l);
		free(r);
		store_close(st);
	}
	unlink(batch);
	unlink(db);
	unlink(rawdb);
	unlink(out);
	policy_free(pol);
	keyfile_free(match); keyfile_free(ksign); keyfile_free(gwpub);
	keyfile_free(gwenc); keyfile_free(gwsign); keyfile_free(storage);
	return 0;
}

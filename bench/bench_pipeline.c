/*
 * bench_pipeline.c - the file pipeline's stages against baselines measured in
 * the same run on the same data:
 *
 *   agent   pack_csv() records/s   vs the raw primitives of the same records (same token count and
 *           on 1 and on every core   payload sizes): OpenSSL HMAC-SHA-256 with the pads precomputed +
 *                                     ChaCha20-Poly1305, on as many threads as the agent
 *                                     (BENCH_STAGES=agent: this stage only)
 *   ingest  ingest_batch_file()    vs a raw SQLite bulk insert of the same rows into the same schema
 *           on every core and on 1   (store_open's database, one transaction, one prepared statement;
 *                                     BENCH_STAGES=ingest: this stage only, on a batch packed untimed)
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
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <sqlite3.h>

#include "bench/bench.h"
#include "agent/pack.h"
#include "base/workers.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "gateway/erase.h"
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
	int withdrawal;                   /* ingest keeps a tombstone for it, not a record */
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
		v[i].withdrawal = sr->withdrawal;
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

/* CPU seconds (user + system) this process has used: the machine is shared, wall time alone misleads. */
static double
cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	    ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of the calling thread alone: ingest's writer is the thread that calls it. */
static double
cpu_thread_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Raw crypto of the same records: one HMAC-SHA-256 per token over a typical
 * normalized id (OpenSSL, pads precomputed, restarted per token), one AEAD
 * seal, on `nthreads` threads over slices of the records.
 */
struct crypto_slice {
	const struct rec *v;
	size_t from, to;
	EVP_MAC_CTX *mac;
};

static void *
crypto_slice_run(void *arg)
{
	struct crypto_slice *sl = arg;
	unsigned char k[32], out[32], nonce[12] = { 0 }, *ct = malloc(70000);
	static const char id[] = "crossgate token v1/email/someone.example@gmail.com";
	size_t i, ol;

	randombytes_buf(k, sizeof(k));
	for (i = sl->from; i < sl->to; i++) {
		for (int j = 0; j < sl->v[i].ntok; j++) {
			EVP_MAC_init(sl->mac, NULL, 0, NULL);
			EVP_MAC_update(sl->mac, (const unsigned char *)id, sizeof(id) - 1);
			EVP_MAC_final(sl->mac, out, &ol, sizeof(out));
		}
		memcpy(nonce, &i, sizeof(i));
		crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, sl->v[i].ct, sl->v[i].ct_len - 16, NULL, 0, NULL, nonce, k);
	}
	free(ct);
	return NULL;
}

static double
baseline_crypto(const struct rec *v, size_t n, unsigned nthreads)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	struct crypto_slice sl[WORKERS_MAX];
	pthread_t th[WORKERS_MAX];
	unsigned char k[32];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	double t;
	unsigned i;

	randombytes_buf(k, sizeof(k));
	for (i = 0; i < nthreads; i++) {
		sl[i].v = v;
		sl[i].from = n * i / nthreads;
		sl[i].to = n * (i + 1) / nthreads;
		if (mac == NULL || (sl[i].mac = EVP_MAC_CTX_new(mac)) == NULL || EVP_MAC_init(sl[i].mac, k, sizeof(k), params) != 1)
			bench_die("OpenSSL HMAC", NULL);
	}
	t = bench_now();
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, crypto_slice_run, &sl[i]) != 0)
			bench_die("pthread_create", NULL);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	t = bench_now() - t;
	for (i = 0; i < nthreads; i++)
		EVP_MAC_CTX_free(sl[i].mac);
	EVP_MAC_free(mac);
	return t;
}

/*
 * Insert the rows ingest stores, with prepared statements in one transaction
 * (BEGIN IMMEDIATE, as ingest): a record row per data record, a tombstone
 * row (its token as the key) per withdrawal.  Seconds; *cpu its CPU seconds.
 */
static double
baseline_insert(sqlite3 *db, const struct rec *v, size_t n, double *cpu)
{
	sqlite3_stmt *s, *tomb;
	double t;
	size_t i;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "INSERT INTO batches(id, batch_id, partner, digest, records, policy_hash, received_at, "
	    "wrapped_key) VALUES (1, zeroblob(16), 'k', zeroblob(32), 0, zeroblob(32), 0, zeroblob(48))", NULL, NULL,
	    NULL) != SQLITE_OK || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO records(batch, partner, idx, email_token, phone_token, consent_bits,"
	    " consent_at, payload) VALUES (1, 'k', ?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO tombstones(partner, key, revoked_at) VALUES ('k', ?1, ?2)", -1, &tomb,
	    NULL) != SQLITE_OK) {
		fprintf(stderr, "bench: sqlite: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	*cpu = cpu_thread_now();
	t = bench_now();
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		bench_die("sqlite begin", NULL);
	for (i = 0; i < n; i++) {
		if (v[i].withdrawal) {
			sqlite3_bind_blob(tomb, 1, v[i].tok[0], 32, SQLITE_STATIC);
			sqlite3_bind_int64(tomb, 2, v[i].at);
			if (sqlite3_step(tomb) != SQLITE_DONE) {
				fprintf(stderr, "bench: sqlite insert: %s\n", sqlite3_errmsg(db));
				exit(1);
			}
			sqlite3_reset(tomb);
			continue;
		}
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
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		bench_die("sqlite commit", NULL);
	t = bench_now() - t;
	*cpu = cpu_thread_now() - *cpu;
	sqlite3_finalize(s);
	sqlite3_finalize(tomb);
	return t;
}

static void
bench_unlink_db(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/*
 * The raw SQLite bulk insert of the same rows into the same schema: the
 * database made by store_open (the store's tables, constraints and
 * pragmas), the rows bound straight from memory.  Ingest can at best
 * reach this: SQLite has one writer.
 */
static double
baseline_sqlite(const char *path, const struct rec *v, size_t n, double *cpu)
{
	struct store *st;
	struct cg_err e;
	double t;

	bench_unlink_db(path);
	if (store_open(path, STORE_OPEN_CREATE, &st, &e) != 0 || erase_schema(st, &e) != 0)
		bench_die(path, &e);
	t = baseline_insert(store_db(st), v, n, cpu);
	store_close(st);
	return t;
}

/*
 * The same into bare tables (no foreign key, not STRICT, no secure_delete,
 * the default page cache): what the store's constraints and settings cost.
 */
static double
baseline_sqlite_bare(const char *path, const struct rec *v, size_t n)
{
	sqlite3 *db;
	double t, cpu;

	bench_unlink_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
	    "CREATE TABLE batches(id INTEGER PRIMARY KEY, batch_id BLOB, partner TEXT, digest BLOB, records INTEGER,"
	    " policy_hash BLOB, received_at INTEGER, wrapped_key BLOB);"
	    "CREATE TABLE records(id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, partner TEXT NOT NULL,"
	    " idx INTEGER NOT NULL, email_token BLOB, phone_token BLOB, consent_bits INTEGER NOT NULL,"
	    " consent_at INTEGER NOT NULL, payload BLOB NOT NULL);"
	    "CREATE TABLE tombstones(partner TEXT, key BLOB, revoked_at INTEGER, PRIMARY KEY (partner, key)) WITHOUT ROWID",
	    NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench: sqlite: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	t = baseline_insert(db, v, n, &cpu);
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
	double t_pack, t_pack1, t_crypto, t_crypto1, t_ingest, t_sql, t_hash, cpu, cpu1, cpu_crypto1, cpu_crypto;
	const char *stages = getenv("BENCH_STAGES");
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

	/* agent: on one thread, then on every core (the default) */
	memset(&po, 0, sizeof(po));
	po.pol = pol; po.partner_id = "k"; po.input = csv; po.output = batch;
	po.match = match; po.sign = ksign; po.gateway = gwpub;
	if (stages != NULL && strcmp(stages, "ingest") == 0) {
		/* the batch only, untimed */
		if (pack_csv(&po, &ps, &e) != 0)
			bench_die("pack", &e);
		recs = read_batch(batch, policy_partner_find(pol, "k"), &nrec);
		goto ingest;
	}
	po.threads = 1;
	cpu = cpu_now();
	t_pack1 = bench_now();
	if (pack_csv(&po, &ps, &e) != 0)
		bench_die("pack", &e);
	t_pack1 = bench_now() - t_pack1;
	cpu1 = cpu_now() - cpu;
	po.threads = 0;
	cpu = cpu_now();
	t_pack = bench_now();
	if (pack_csv(&po, &ps, &e) != 0)
		bench_die("pack", &e);
	t_pack = bench_now() - t_pack;
	cpu = cpu_now() - cpu;
	recs = read_batch(batch, policy_partner_find(pol, "k"), &nrec);
	cpu_crypto1 = cpu_now();
	t_crypto1 = baseline_crypto(recs, nrec, 1);
	cpu_crypto1 = cpu_now() - cpu_crypto1;
	cpu_crypto = cpu_now();
	t_crypto = baseline_crypto(recs, nrec, workers_cpus());
	cpu_crypto = cpu_now() - cpu_crypto;
	printf("agent   %9.0f records/s on 1 thread (%llu rows read, %zu records in %.2f s, %.2f CPU-s)\n",
	    (double)nrec / t_pack1, (unsigned long long)ps.rows, nrec, t_pack1, cpu1);
	printf("        %9.0f records/s on %u threads, one per core (%.2f s, %.2f CPU-s; target >= 1,000,000)\n",
	    (double)nrec / t_pack, workers_cpus(), t_pack, cpu);
	printf("        %9.0f records/s raw OpenSSL HMAC-SHA-256 (pads precomputed) + ChaCha20-Poly1305 of the same "
	    "records on 1 thread, %.0f on %u\n", (double)nrec / t_crypto1, (double)nrec / t_crypto, workers_cpus());
	printf("        ratio %.1f%% of the raw crypto rate on 1 thread, %.1f%% on %u (target >= 40%%)\n",
	    100.0 * t_crypto1 / t_pack1, 100.0 * t_crypto / t_pack, workers_cpus());
	/* CPU time moves far less than wall time when other jobs share the cores. */
	printf("        %9.2f CPU-us per record on 1 thread, %.2f on %u; raw crypto %.2f and %.2f: ratio %.1f%% and %.1f%% "
	    "per CPU-second\n", 1e6 * cpu1 / (double)nrec, 1e6 * cpu / (double)nrec, workers_cpus(),
	    1e6 * cpu_crypto1 / (double)nrec, 1e6 * cpu_crypto / (double)nrec, 100.0 * cpu_crypto1 / cpu1,
	    100.0 * cpu_crypto / cpu);
	if (stages != NULL && strcmp(stages, "agent") == 0) {
		for (i = 0; i < nrec; i++)
			free(recs[i].ct);
		free(recs);
		unlink(batch);
		goto done;
	}

ingest:
	/* ingest: on every core, then on one thread, the raw baseline between them */
	t_sql = 0;
	{
		unsigned th[2] = { 0, 1 };
		double t_in[2], cpu_in[2], wr_in[2], t_bare, cpu_sql = 0;
		uint64_t nwithdrawn = 0;

		for (int k = 0; k < 2; k++) {
			struct store *st;
			struct audit *a;
			struct ingest_keys ik = { gwenc, storage, th[k] };
			struct ingest_result res;

			bench_unlink_db(db);
			if (store_open(db, STORE_OPEN_CREATE, &st, &e) != 0 || audit_open(st, gwsign, &a, &e) != 0)
				bench_die(db, &e);
			cpu_in[k] = cpu_now();
			wr_in[k] = cpu_thread_now();
			t_in[k] = bench_now();
			if (ingest_batch_file(st, a, pol, &ik, batch, &res, &e) != 0)
				bench_die("ingest", &e);
			t_in[k] = bench_now() - t_in[k];
			wr_in[k] = cpu_thread_now() - wr_in[k];
			cpu_in[k] = cpu_now() - cpu_in[k];
			/* a row without match consent is packed as a withdrawal: a tombstone, not a stored record */
			if (res.records + res.withdrawn + res.narrowed != nrec) {
				fprintf(stderr, "bench: ingest took %llu records and %llu withdrawals of %zu\n",
				    (unsigned long long)res.records, (unsigned long long)(res.withdrawn + res.narrowed), nrec);
				exit(1);
			}
			nwithdrawn = res.withdrawn + res.narrowed;
			audit_free(a);
			store_close(st);
			if (k == 0)
				t_sql = baseline_sqlite(rawdb, recs, nrec, &cpu_sql);
		}
		t_ingest = t_in[0];
		t_bare = baseline_sqlite_bare(rawdb, recs, nrec);
		printf("ingest  %9.0f rows/s on %u threads (%zu rows in %.2f s, %.2f CPU-s: verify, open, check, insert, "
		    "audit; %llu of the rows are withdrawals: tombstones and one erasure pass)\n", (double)nrec / t_ingest,
		    workers_cpus(), nrec, t_ingest, cpu_in[0], (unsigned long long)nwithdrawn);
		printf("        %9.0f rows/s on 1 thread (%.2f s, %.2f CPU-s)\n", (double)nrec / t_in[1], t_in[1], cpu_in[1]);
		printf("        %9.0f rows/s raw SQLite bulk insert of the same rows into the same schema (store_open's "
		    "tables and pragmas, one transaction: a record or a tombstone per row)\n", (double)nrec / t_sql);
		printf("        ratio %.1f%% of raw SQLite on %u threads, %.1f%% on 1 (target >= 80%%)\n",
		    100.0 * t_sql / t_ingest, workers_cpus(), 100.0 * t_sql / t_in[1]);
		/*
		 * The one writer bounds ingest when the workers keep up: its CPU time
		 * against the raw insert's moves far less than wall time on a shared
		 * machine.
		 */
		printf("        the writer thread %.2f CPU-s on %u threads (%.2f on 1), the raw insert %.2f: ratio %.1f%% per "
		    "CPU-second of the writer\n", wr_in[0], workers_cpus(), wr_in[1], cpu_sql, 100.0 * cpu_sql / wr_in[0]);
		printf("        %9.0f rows/s raw into bare tables (no foreign key, not STRICT, no secure_delete, default "
		    "cache): what the store's constraints and settings cost at load time\n", (double)nrec / t_bare);
	}
	for (i = 0; i < nrec; i++)
		free(recs[i].ct);
	free(recs);
	if (stages != NULL && strcmp(stages, "ingest") == 0) {
		unlink(batch);
		bench_unlink_db(db);
		bench_unlink_db(rawdb);
		goto done;
	}

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
done:
	policy_free(pol);
	keyfile_free(match); keyfile_free(ksign); keyfile_free(gwpub);
	keyfile_free(gwenc); keyfile_free(gwsign); keyfile_free(storage);
	return 0;
}

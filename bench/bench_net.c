/*
 * bench_net.c - the gateway over mutual TLS on loopback, against raw TLS in
 * the same run and the same process layout (the sender on the main thread,
 * the receiver on a thread of its own, as the gateway serves a connection):
 *
 *   raw TLS      one connection, the same TLS 1.3 contexts, 1 GiB written and
 *                read in 256 KiB pieces, the reader discarding: the ceiling
 *                for any protocol on it
 *   handshakes   full mutual-TLS handshakes per second (connect, verify both
 *                certificates, close), sequential
 *   push         `agent push` of the demo's two batch files to a gateway in
 *                this process: committed (transfer, spool, verify, decrypt,
 *                re-seal, insert, commit), then pushed again ROUNDS times
 *                (transfer, spool and signature check, answered duplicate)
 *   raw TLS at   just before each push, a raw transfer of the same number of
 *   push sizes   bytes on a fresh connection (as a push has), timed by the
 *                reader from the handshake's end to the last byte, as the
 *                gateway times its receive phase: the load of the moment on
 *                this shared 2-core machine hits both sides of each pair
 *   receive      the gateway's receive phase (frames over TLS, each checked,
 *                into the memory spool), per push from its log: against the
 *                paired raw transfers (the target, >= 50%), per pair (median,
 *                min, max) and against the bulk figure
 *   local ingest ingest_batch_file() of the same two files into a fresh
 *                database of the same kind, no network: push / local is what
 *                the network costs on top of ingest
 *
 * usage: bench_net DEMO_DIR [ROUNDS]   (a directory made by `crossgate demo`;
 * ROUNDS of duplicate pushes, default 3)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "bench/bench.h"
#include "agent/push.h"
#include "crypto/keyfile.h"
#include "net/tls.h"
#include "audit/audit.h"
#include "gateway/ingest.h"
#include "gateway/server.h"
#include "store/store.h"
#include "policy/policy.h"

#define RAW_BYTES (1024ull * 1024 * 1024)
#define PIECE (256 * 1024)
#define NBATCH 2
#define MAX_PUSHES 64

static const char *demo;
static SSL_CTX *sctx, *cctx;
static int lfd;
static char port[8];
static volatile int hs_stop;
static unsigned long hs_count;
static const char *batch_rel[NBATCH] = { "batches/k.batch", "batches/g.batch" };

static const char *
at(const char *rel)
{
	static char buf[8][1024];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", demo, rel);
	return buf[i];
}

static double
mbs(double bytes, double s)
{
	return bytes / s / 1e6;
}

/* One raw transfer's reader: `bytes` read in PIECE reads and dropped; `seconds` from the handshake's end. */
struct raw_job {
	unsigned long long bytes;
	double seconds;
};

static void *
raw_server(void *arg)
{
	struct raw_job *j = arg;
	struct tls_conn *c = NULL;
	struct cg_err err;
	unsigned char *b = malloc(PIECE);
	unsigned long long got = 0;
	int fd = accept(lfd, NULL, NULL);
	double t0;

	if (b == NULL || tls_accept(sctx, fd, tls_now_ms() + 5000, &c, &err) != 0)
		bench_die("raw accept", &err);
	t0 = bench_now();
	while (got < j->bytes) {
		size_t n = j->bytes - got < PIECE ? (size_t)(j->bytes - got) : PIECE;

		if (tls_read(c, b, n, tls_now_ms() + 10000, NULL, &err) != 0)
			bench_die("raw read", &err);
		got += n;
	}
	j->seconds = bench_now() - t0;
	tls_close(c);
	free(b);
	return NULL;
}

/* Send `bytes` of b (PIECE long, repeated) over a new connection; the reader's seconds in j. */
static double
raw_transfer(const unsigned char *b, struct raw_job *j)
{
	struct tls_conn *c = NULL;
	struct cg_err err;
	pthread_t th;
	unsigned long long sent = 0;
	double t0;

	pthread_create(&th, NULL, raw_server, j);
	if (tls_connect(cctx, "localhost", port, tls_now_ms() + 5000, &c, &err) != 0)
		bench_die("raw connect", &err);
	t0 = bench_now();
	while (sent < j->bytes) {
		size_t n = j->bytes - sent < PIECE ? (size_t)(j->bytes - sent) : PIECE;

		if (tls_write(c, b, n, tls_now_ms() + 10000, &err) != 0)
			bench_die("raw write", &err);
		sent += n;
	}
	pthread_join(th, NULL);
	tls_close(c);
	return bench_now() - t0;
}

static void *
hs_server(void *arg)
{
	struct tls_conn *c;
	struct cg_err err;
	char b;

	(void)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (hs_stop) {
			close(fd);
			return NULL;
		}
		if (tls_accept(sctx, fd, tls_now_ms() + 5000, &c, &err) == 0) {
			/* wait for the client's close, so that the handshake is complete on both sides */
			if (tls_read(c, &b, 1, tls_now_ms() + 5000, NULL, &err) == 0)
				bench_die("handshake: unexpected data", NULL);
			tls_close(c);
		}
	}
}

struct srv {
	struct server *s;
	int rc;
};

static void *
gw_main(void *arg)
{
	struct srv *v = arg;
	struct cg_err err;

	v->rc = server_run(v->s, &err);
	return NULL;
}

/* One push and the raw transfer of the same size just before it: the load of the moment hits both. */
struct pair {
	unsigned long long bytes;
	double raw_s;                       /* reader's time, handshake excluded */
	long long receive_us;               /* the gateway's receive phase, from its log */
};

/* Push both batch files, each after a raw transfer of its size (into pairs); the pushes' seconds. */
static double
push_all(const struct push_opts *o[NBATCH], const unsigned char *piece, uint64_t *records, uint64_t *bytes,
    int want_dup, struct pair *pairs, size_t *npairs)
{
	struct push_result r;
	struct raw_job j;
	struct cg_err err;
	struct stat sb;
	double t0, s = 0;
	int i;

	*records = *bytes = 0;
	for (i = 0; i < NBATCH; i++) {
		if (*npairs >= MAX_PUSHES)
			bench_die("too many pushes", NULL);
		if (stat(at(batch_rel[i]), &sb) != 0)
			bench_die(batch_rel[i], NULL);
		j.bytes = (unsigned long long)sb.st_size;
		(void)raw_transfer(piece, &j);
		pairs[*npairs].bytes = j.bytes;
		pairs[*npairs].raw_s = j.seconds;
		++*npairs;
		t0 = bench_now();
		if (push_batch(o[i], at(batch_rel[i]), &r, &err) != 0 || r.duplicate != want_dup)
			bench_die(batch_rel[i], &err);
		s += bench_now() - t0;
		*records += r.records;
		*bytes += r.bytes;
	}
	return s;
}

/* The value of "key": in a JSON log line, or -1. */
static long long
log_field(const char *line, const char *key)
{
	char pat[64];
	const char *q;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	return (q = strstr(line, pat)) != NULL ? atoll(q + strlen(pat)) : -1;
}

/* The gateway's receive phase of each push, in push order, from its JSON log; the committed pushes' commit_us. */
static void
receive_samples(FILE *log, struct pair *pairs, size_t npairs, long long *commit_us)
{
	char line[2048];
	size_t n = 0;

	*commit_us = 0;
	fflush(log);
	rewind(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		if (strstr(line, "\"event\":\"push\"") == NULL)
			continue;
		if (n >= npairs || log_field(line, "bytes") != (long long)pairs[n].bytes ||
		    (pairs[n].receive_us = log_field(line, "receive_us")) <= 0)
			bench_die("gateway log: pushes other than those sent", NULL);
		if (strstr(line, "\"status\":\"committed\"") != NULL)
			*commit_us += log_field(line, "commit_us");
		n++;
	}
	if (n != npairs)
		bench_die("gateway log: pushes missing", NULL);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Ingest the batch files into a fresh database at db, as `crossgate gateway ingest` does: seconds. */
static double
local_ingest(const char *db, const struct policy *pol, const struct keyfile_key *sign, const struct ingest_keys *ik,
    uint64_t *records, uint64_t *bytes)
{
	struct store *st = NULL;
	struct audit *a = NULL;
	struct ingest_result res;
	struct cg_err err;
	struct stat sb;
	double t0;
	int i;

	cg_err_clear(&err);
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, sign, &a, &err) != 0 ||
	    audit_log_keys(a, "keys", ik->enc, ik->storage, &err) != 0 || audit_policy_seen(a, pol->hash, &err) != 0)
		bench_die("local store", &err);
	*records = *bytes = 0;
	t0 = bench_now();
	for (i = 0; i < NBATCH; i++) {
		if (ingest_batch_file(st, a, pol, ik, at(batch_rel[i]), &res, &err) != 0 || res.duplicate)
			bench_die(batch_rel[i], &err);
		if (stat(at(batch_rel[i]), &sb) != 0)
			bench_die(batch_rel[i], NULL);
		*records += res.records;
		*bytes += (uint64_t)sb.st_size;
	}
	t0 = bench_now() - t0;
	audit_free(a);
	store_close(st);
	return t0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct cg_err err;
	pthread_t th;
	struct tls_conn *c = NULL;
	struct raw_job job;
	struct pair pairs[MAX_PUSHES];
	size_t npairs = 0, i;
	unsigned char *b;
	double t0, raw_s, hs_s, commit_s, dup_s, raw_mbs, local_s, ratio[MAX_PUSHES], rawp_s = 0, rcv_s = 0;
	unsigned long long pair_bytes = 0;
	uint64_t recs, bytes, drecs, dbytes, lrecs, lbytes;
	long long commit_us;
	int rounds = argc == 3 ? atoi(argv[2]) : 3;

	if (argc < 2 || argc > 3 || rounds < 1 || rounds > MAX_PUSHES / NBATCH - 1) {
		fprintf(stderr, "usage: bench_net DEMO_DIR [ROUNDS]   (ROUNDS of duplicate pushes: 1 to %d)\n",
		    MAX_PUSHES / NBATCH - 1);
		return 2;
	}
	demo = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 64) != 0 || getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
		bench_die("listen", NULL);
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	if (tls_server_ctx(at("pki/ca.pem"), at("pki/gateway.pem"), at("pki/gateway.key"), &sctx, &err) != 0 ||
	    tls_client_ctx(at("pki/ca.pem"), at("pki/k.pem"), at("pki/k.key"), &cctx, &err) != 0)
		bench_die("TLS contexts", &err);

	/* raw TLS in bulk */
	if ((b = malloc(PIECE)) == NULL)
		return 1;
	randombytes_buf(b, PIECE);
	job.bytes = RAW_BYTES;
	raw_s = raw_transfer(b, &job);
	raw_mbs = mbs((double)RAW_BYTES, raw_s);
	printf("raw TLS       %8.0f MB/s   %llu MiB over one TLS 1.3 connection, 256 KiB writes, loopback\n",
	    raw_mbs, RAW_BYTES >> 20);

	/* handshakes */
	pthread_create(&th, NULL, hs_server, NULL);
	t0 = bench_now();
	hs_count = 0;
	while (bench_now() - t0 < 2.0) {
		if (tls_connect(cctx, "localhost", port, tls_now_ms() + 5000, &c, &err) != 0)
			bench_die("handshake", &err);
		tls_close(c);
		hs_count++;
	}
	hs_s = bench_now() - t0;
	hs_stop = 1;
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			bench_die("wake", NULL);
		close(fd);
	}
	pthread_join(th, NULL);
	printf("handshakes    %8.0f /s     mutual TLS 1.3, Ed25519 certificates, sequential, no resumption\n",
	    (double)hs_count / hs_s);

	/* push through a gateway in this process, each push after a raw transfer of its size; then ingest locally */
	{
		struct policy *pol = NULL;
		struct keyfile_key *enc = NULL, *sign = NULL, *storage = NULL;
		struct server_config cfg;
		struct push_opts ko, go;
		const struct push_opts *po[NBATCH] = { &ko, &go };
		struct ingest_keys ik;
		struct srv v;
		char tmp[] = "/tmp/cg-bench-net-XXXXXX", db[256], spool[256], ldb[256];
		FILE *log = tmpfile();   /* the gateway's JSON log: receive_us of each push */
		int r;

		if (mkdtemp(tmp) == NULL || log == NULL)
			bench_die("temp dir", NULL);
		snprintf(db, sizeof(db), "%s/gw.db", tmp);
		snprintf(spool, sizeof(spool), "%s/spool", tmp);
		snprintf(ldb, sizeof(ldb), "%s/local.db", tmp);
		if (policy_load(at("policy.yaml"), &pol, NULL, &err) != 0 ||
		    keyfile_load(at("keys/gateway/enc.key"), KEYFILE_X25519_SECRET, &enc, &err) != 0 ||
		    keyfile_load(at("keys/gateway/sign.key"), KEYFILE_ED25519_SECRET, &sign, &err) != 0 ||
		    keyfile_load(at("keys/gateway/storage.key"), KEYFILE_STORAGE, &storage, &err) != 0)
			bench_die("gateway setup", &err);
		memset(&cfg, 0, sizeof(cfg));
		cfg.pol = pol;
		cfg.enc = enc;
		cfg.sign = sign;
		cfg.storage = storage;
		cfg.db_path = db;
		cfg.spool_dir = spool;
		cfg.cert = at("pki/gateway.pem");
		cfg.key = at("pki/gateway.key");
		cfg.listen = "127.0.0.1:0";
		cfg.listen_fd = -1;
		cfg.log = log;
		if (server_new(&cfg, &v.s, &err) != 0)
			bench_die("server", &err);
		pthread_create(&th, NULL, gw_main, &v);
		{
			static char gwaddr[64];

			snprintf(gwaddr, sizeof(gwaddr), "localhost:%d", server_port(v.s));
			push_opts_default(&ko);
			ko.client.gateway = gwaddr;
			/* at() reuses its buffers: these must outlive many calls */
			ko.client.ca = strdup(at("pki/ca.pem"));
			ko.client.cert = strdup(at("pki/k.pem"));
			ko.client.key = strdup(at("pki/k.key"));
			go = ko;
			go.client.cert = strdup(at("pki/g.pem"));
			go.client.key = strdup(at("pki/g.key"));
			if (ko.client.ca == NULL || ko.client.cert == NULL || ko.client.key == NULL ||
			    go.client.cert == NULL || go.client.key == NULL)
				bench_die("out of memory", NULL);
		}
		commit_s = push_all(po, b, &recs, &bytes, 0, pairs, &npairs);
		dup_s = 0;
		for (r = 0; r < rounds; r++)
			dup_s += push_all(po, b, &drecs, &dbytes, 1, pairs, &npairs);
		server_stop(v.s);
		pthread_join(th, NULL);

		receive_samples(log, pairs, npairs, &commit_us);
		for (i = 0; i < npairs; i++) {
			pair_bytes += pairs[i].bytes;
			rawp_s += pairs[i].raw_s;
			rcv_s += (double)pairs[i].receive_us / 1e6;
			/* the same bytes: the ratio of the rates is the inverse ratio of the times */
			ratio[i] = pairs[i].raw_s / ((double)pairs[i].receive_us / 1e6);
		}
		qsort(ratio, npairs, sizeof(ratio[0]), cmp_double);
		printf("raw TLS       %8.0f MB/s   the same sizes, each on a fresh connection just before its push, "
		    "timed by the reader as the gateway times its receive phase\n", mbs((double)pair_bytes, rawp_s));
		printf("receive       %8.0f MB/s   frames over TLS, checked, into the memory spool: %.0f%% of raw TLS "
		    "(target >= 50%%)\n", mbs((double)pair_bytes, rcv_s), 100.0 * rawp_s / rcv_s);
		printf("              %8s        each push / its raw transfer: median %.0f%%, min %.0f%%, max %.0f%% "
		    "(%zu pushes); %.0f%% of the bulk raw TLS figure\n", "", 100.0 * ratio[npairs / 2],
		    100.0 * ratio[0], 100.0 * ratio[npairs - 1], npairs,
		    100.0 * mbs((double)pair_bytes, rcv_s) / raw_mbs);

		printf("push          %8.0f MB/s   %9.0f records/s  committed: %llu records, %.1f MB, 2 batches "
		    "(%.0f%% of raw TLS; bound by the ingest, see below)\n", mbs((double)bytes, commit_s),
		    (double)recs / commit_s, (unsigned long long)recs, (double)bytes / 1e6,
		    100.0 * mbs((double)bytes, commit_s) / raw_mbs);
		printf("push again    %8.0f MB/s   %9.0f records/s  transfer, spool and signature check, answered "
		    "duplicate, %d rounds\n", mbs((double)dbytes * rounds, dup_s), (double)drecs * rounds / dup_s,
		    rounds);
		ik.enc = enc;
		ik.storage = storage;
		ik.threads = 0;
		local_s = local_ingest(ldb, pol, sign, &ik, &lrecs, &lbytes);
		printf("local ingest  %8.0f MB/s   %9.0f records/s  the same two files, no network (%llu records)\n",
		    mbs((double)lbytes, local_s), (double)lrecs / local_s, (unsigned long long)lrecs);
		printf("network cost  %8.2fx      committed push time / local ingest time: %.0f ms / %.0f ms (of the "
		    "push: the gateway's ingest from its spool %.0f ms)\n", commit_s / local_s, commit_s * 1e3,
		    local_s * 1e3, (double)commit_us / 1e3);

		free((char *)ko.client.ca);
		free((char *)ko.client.cert);
		free((char *)ko.client.key);
		free((char *)go.client.cert);
		free((char *)go.client.key);
		server_free(v.s);
		keyfile_free(enc);
		keyfile_free(sign);
		keyfile_free(storage);
		policy_free(pol);
		fclose(log);
		{
			char cmd[300];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
			if (system(cmd) != 0)
				fprintf(stderr, "cannot remove %s\n", tmp);
		}
	}
	close(lfd);
	free(b);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return 0;
}

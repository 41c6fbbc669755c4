/*
 * bench_net.c - the gateway over mutual TLS on loopback, against raw TLS in
 * the same run:
 *
 *   raw TLS      one connection, the same TLS 1.3 contexts, bytes written and
 *                read in 256 KiB pieces: the ceiling for any protocol on it
 *   handshakes   full mutual-TLS handshakes per second (connect, verify both
 *                certificates, close), sequential
 *   push         `agent push` of the demo's two batch files to a gateway in
 *                this process: committed (transfer, spool, verify, decrypt,
 *                re-seal, insert, commit) and pushed again (transfer, spool and
 *                signature check, answered duplicate)
 *
 * usage: bench_net DEMO_DIR   (a directory made by `crossgate demo`)
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

#include "agent/push.h"
#include "crypto/keyfile.h"
#include "crypto/tls.h"
#include "gateway/server.h"
#include "policy/policy.h"

#define RAW_BYTES (1024ull * 1024 * 1024)
#define PIECE (256 * 1024)

static const char *demo;
static SSL_CTX *sctx;
static int lfd;
static char port[8];
static volatile int hs_stop;
static unsigned long hs_count;

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
now_s(void)
{
	return (double)tls_now_ms() / 1000.0;
}

static void
die(const char *what, const struct cg_err *err)
{
	fprintf(stderr, "bench_net: %s: %s\n", what, err != NULL ? err->msg : "");
	exit(1);
}

static void *
raw_server(void *arg)
{
	struct tls_conn *c = NULL;
	struct cg_err err;
	unsigned char *b = malloc(PIECE);
	unsigned long long got = 0;
	int fd = accept(lfd, NULL, NULL);

	(void)arg;
	if (b == NULL || tls_accept(sctx, fd, tls_now_ms() + 5000, &c, &err) != 0)
		die("raw accept", &err);
	while (got < RAW_BYTES) {
		if (tls_read(c, b, PIECE, tls_now_ms() + 10000, NULL, &err) != 0)
			die("raw read", &err);
		got += PIECE;
	}
	tls_close(c);
	free(b);
	return NULL;
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
				die("handshake: unexpected data", NULL);
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

static double
push_all(const struct push_opts *k, const struct push_opts *g, uint64_t *records, uint64_t *bytes, int want_dup)
{
	struct push_result r;
	struct cg_err err;
	double t0 = now_s();

	*records = *bytes = 0;
	if (push_batch(k, at("batches/k.batch"), &r, &err) != 0 || r.duplicate != want_dup)
		die("push k", &err);
	*records += r.records;
	*bytes += r.bytes;
	if (push_batch(g, at("batches/g.batch"), &r, &err) != 0 || r.duplicate != want_dup)
		die("push g", &err);
	*records += r.records;
	*bytes += r.bytes;
	return now_s() - t0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct cg_err err;
	pthread_t th;
	SSL_CTX *cctx = NULL;
	struct tls_conn *c = NULL;
	unsigned char *b;
	unsigned long long sent = 0;
	double t0, raw_s, hs_s, commit_s, dup_s, raw_mbs;
	uint64_t recs, bytes;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_net DEMO_DIR\n");
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
		die("listen", NULL);
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	if (tls_server_ctx(at("pki/ca.pem"), at("pki/gateway.pem"), at("pki/gateway.key"), &sctx, &err) != 0 ||
	    tls_client_ctx(at("pki/ca.pem"), at("pki/k.pem"), at("pki/k.key"), &cctx, &err) != 0)
		die("TLS contexts", &err);

	/* raw TLS */
	if ((b = malloc(PIECE)) == NULL)
		return 1;
	randombytes_buf(b, PIECE);
	pthread_create(&th, NULL, raw_server, NULL);
	if (tls_connect(cctx, "localhost", port, tls_now_ms() + 5000, &c, &err) != 0)
		die("raw connect", &err);
	t0 = now_s();
	while (sent < RAW_BYTES) {
		if (tls_write(c, b, PIECE, tls_now_ms() + 10000, &err) != 0)
			die("raw write", &err);
		sent += PIECE;
	}
	pthread_join(th, NULL);
	raw_s = now_s() - t0;
	tls_close(c);
	raw_mbs = (double)RAW_BYTES / raw_s / 1e6;
	printf("raw TLS     %8.0f MB/s   (%llu MiB over one TLS 1.3 connection, %s)\n", raw_mbs,
	    RAW_BYTES >> 20, "loopback");

	/* handshakes */
	pthread_create(&th, NULL, hs_server, NULL);
	t0 = now_s();
	hs_count = 0;
	while (now_s() - t0 < 2.0) {
		if (tls_connect(cctx, "localhost", port, tls_now_ms() + 5000, &c, &err) != 0)
			die("handshake", &err);
		tls_close(c);
		hs_count++;
	}
	hs_s = now_s() - t0;
	hs_stop = 1;
	{
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("wake", NULL);
		close(fd);
	}
	pthread_join(th, NULL);
	close(lfd);
	printf("handshakes  %8.0f /s     (mutual TLS 1.3, Ed25519 certificates, sequential, no resumption)\n",
	    (double)hs_count / hs_s);
	SSL_CTX_free(cctx);
	free(b);

	/* push through a gateway in this process */
	{
		struct policy *pol = NULL;
		struct keyfile_key *enc = NULL, *sign = NULL, *storage = NULL;
		struct server_config cfg;
		struct push_opts ko, go;
		struct srv v;
		char tmp[] = "/tmp/cg-bench-net-XXXXXX", db[256], spool[256];
		FILE *devnull = tmpfile();   /* the gateway's JSON log: receive_ms of each push */

		if (mkdtemp(tmp) == NULL || devnull == NULL)
			die("temp dir", NULL);
		snprintf(db, sizeof(db), "%s/gw.db", tmp);
		snprintf(spool, sizeof(spool), "%s/spool", tmp);
		if (policy_load(at("policy.yaml"), &pol, NULL, &err) != 0 ||
		    keyfile_load(at("keys/gateway/enc.key"), KEYFILE_X25519_SECRET, &enc, &err) != 0 ||
		    keyfile_load(at("keys/gateway/sign.key"), KEYFILE_ED25519_SECRET, &sign, &err) != 0 ||
		    keyfile_load(at("keys/gateway/storage.key"), KEYFILE_STORAGE, &storage, &err) != 0)
			die("gateway setup", &err);
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
		cfg.log = devnull;
		if (server_new(&cfg, &v.s, &err) != 0)
			die("server", &err);
		pthread_create(&th, NULL, gw_main, &v);
		snprintf(port, sizeof(port), "%d", server_port(v.s));
		{
			static char gwaddr[64];

			snprintf(gwaddr, sizeof(gwaddr), "localhost:%s", port);
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
				die("out of memory", NULL);
		}
		commit_s = push_all(&ko, &go, &recs, &bytes, 0);
		printf("push        %8.0f MB/s   %9.0f records/s  committed (%llu records, %.1f MB; %.0f%% of raw TLS)\n",
		    (double)bytes / commit_s / 1e6, (double)recs / commit_s, (unsigned long long)recs,
		    (double)bytes / 1e6, 100.0 * ((double)bytes / commit_s / 1e6) / raw_mbs);
		dup_s = push_all(&ko, &go, &recs, &bytes, 1);
		printf("push again  %8.0f MB/s   %9.0f records/s  transfer, spool and signature check, answered "
		    "duplicate (%.0f%% of raw TLS)\n", (double)bytes / dup_s / 1e6, (double)recs / dup_s,
		    100.0 * ((double)bytes / dup_s / 1e6) / raw_mbs);
		{
			/* the receive phase alone (frames over TLS into the spool), from the server's own log */
			char line[2048], *q;
			long long ms = 0, pb = 0;

			fflush(devnull);
			rewind(devnull);
			while (fgets(line, sizeof(line), devnull) != NULL) {
				if (strstr(line, "\"event\":\"push\"") == NULL)
					continue;
				if ((q = strstr(line, "\"receive_ms\":")) != NULL)
					ms += atoll(q + 13);
				if ((q = strstr(line, "\"bytes\":")) != NULL)
					pb += atoll(q + 8);
			}
			if (ms > 0)
				printf("receive     %8.0f MB/s   framing over TLS into the spool, all four pushes (%.0f%% of raw "
				    "TLS; target >= 50%%)\n", (double)pb / ((double)ms / 1000.0) / 1e6,
				    100.0 * ((double)pb / ((double)ms / 1000.0) / 1e6) / raw_mbs);
		}
		server_stop(v.s);
		pthread_join(th, NULL);
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
		fclose(devnull);
		{
			char cmd[300];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
			if (system(cmd) != 0)
				fprintf(stderr, "cannot remove %s\n", tmp);
		}
	}
	SSL_CTX_free(sctx);
	return 0;
}

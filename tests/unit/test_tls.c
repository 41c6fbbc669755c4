/* test_tls.c - mutual TLS 1.3 connections: who is accepted, who is not, and deadlines */
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

#include "cgtest.h"
#include "net/pki.h"
#include "net/tls.h"

static char dir[256];
static int lfd;
static char port[8];
static SSL_CTX *sctx;

struct srv_result {
	int rc;
	char msg[CG_ERR_MSG_MAX + 16];
	char identity[PKI_IDENTITY_MAX + 1];
	int echo;                    /* read 5 bytes and echo them */
	int hold_ms;                 /* accept, then say nothing for this long */
};

static const char *
at(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void *
srv_main(void *arg)
{
	struct srv_result *r = arg;
	struct tls_conn *c = NULL;
	struct cg_err err;
	char b[5];
	int fd = accept(lfd, NULL, NULL);

	cg_err_clear(&err);
	r->rc = tls_accept(sctx, fd, tls_now_ms() + 3000, &c, &err);
	snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
	if (r->rc == 0) {
		if (tls_peer_identity(c, r->identity, &err) != 0)
			snprintf(r->identity, sizeof(r->identity), "?");
		if (r->echo && tls_read(c, b, 5, tls_now_ms() + 3000, NULL, &err) == 0 &&
		    tls_write(c, b, 5, tls_now_ms() + 3000, &err) != 0)
			snprintf(r->msg, sizeof(r->msg), "echo: %s", err.msg);
		if (r->hold_ms)
			usleep((useconds_t)r->hold_ms * 1000);
	}
	tls_close(c);
	return NULL;
}

static void
issue(const char *name, enum pki_kind kind, const char *uri, int expired, const char *ca)
{
	struct pki_issue_opts o;
	struct cg_err err;
	char cacert[512], cakey[512], cert[512], key[512];

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.cn = name;
	o.uri = uri;
	o.days = 5;
	o.expired = expired;
	if (kind == PKI_SERVER && uri != NULL) {
		o.dns[o.ndns++] = uri;   /* a server named otherwise */
		o.uri = NULL;
	} else if (kind == PKI_SERVER) {
		o.dns[o.ndns++] = "localhost";
		o.ip[o.nip++] = "127.0.0.1";
	}
	snprintf(cacert, sizeof(cacert), "%s/%s.pem", dir, ca);
	snprintf(cakey, sizeof(cakey), "%s/%s.key", dir, ca);
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	if (pki_issue(cacert, cakey, &o, cert, key, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(2);
	}
}

/* Connect as `who` to `host`; returns the client's result, the server's in *sr. */
static int
attempt(const char *who, const char *host, struct srv_result *sr, struct cg_err *err)
{
	pthread_t th;
	SSL_CTX *cctx = NULL;
	struct tls_conn *c = NULL;
	char cert[512], key[512], b[5];
	int r;

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s.key", dir, who);
	pthread_create(&th, NULL, srv_main, sr);
	r = tls_client_ctx(at("ca.pem"), who[0] ? cert : NULL, who[0] ? key : NULL, &cctx, err);
	if (r == 0)
		r = tls_connect(cctx, host, port, tls_now_ms() + 3000, &c, err);
	/* TLS 1.3: a refused client certificate shows on the client's first read */
	if (r == 0 && sr->echo) {
		r = tls_write(c, "hello", 5, tls_now_ms() + 3000, err);
		if (r == 0)
			r = tls_read(c, b, 5, tls_now_ms() + 3000, NULL, err);
		if (r == 0 && memcmp(b, "hello", 5) != 0)
			r = -100;
	}
	if (r == 0 && sr->hold_ms) {
		size_t got;

		r = tls_read(c, b, 1, tls_now_ms() + 200, &got, err);
		if (r != 0 && tls_timed_out(c))
			r = 1;   /* the deadline held */
	}
	tls_close(c);
	pthread_join(th, NULL);
	SSL_CTX_free(cctx);
	return r;
}

int
main(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct srv_result sr;
	struct cg_err err;
	char host[TLS_HOST_MAX], p[8];
	int r;

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/cg-test-tls-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 2;
	if (pki_make_ca(at("ca.pem"), at("ca.key"), "ca", 5, 0, &err) != 0 ||
	    pki_make_ca(at("ca2.pem"), at("ca2.key"), "ca2", 5, 0, &err) != 0)
		return 2;
	issue("gw", PKI_SERVER, NULL, 0, "ca");
	issue("elsewhere", PKI_SERVER, "gateway.example", 0, "ca");
	issue("k", PKI_CLIENT, "crossgate:partner:k", 0, "ca");
	issue("old", PKI_CLIENT, "crossgate:partner:k", 1, "ca");
	issue("alien", PKI_CLIENT, "crossgate:partner:k", 0, "ca2");

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
		return 2;
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	CHECK_EQ_INT(tls_server_ctx(at("ca.pem"), at("gw.pem"), at("gw.key"), &sctx, &err), 0);

	/* a good client, by name and by address; the server learns its identity */
	memset(&sr, 0, sizeof(sr));
	sr.echo = 1;
	CHECK_EQ_INT(attempt("k", "localhost", &sr, &err), 0);
	CHECK_EQ_INT(sr.rc, 0);
	CHECK_STR(sr.identity, "crossgate:partner:k");
	memset(&sr, 0, sizeof(sr));
	sr.echo = 1;
	CHECK_EQ_INT(attempt("k", "127.0.0.1", &sr, &err), 0);

	/* no client certificate */
	memset(&sr, 0, sizeof(sr));
	sr.echo = 1;
	r = attempt("", "localhost", &sr, &err);
	CHECK(r != 0);
	CHECK_CONTAINS(err.msg, "certificate required");
	CHECK_CONTAINS(sr.msg, "peer did not return a certificate");
	/* expired, and from another CA */
	memset(&sr, 0, sizeof(sr));
	sr.echo = 1;
	CHECK(attempt("old", "localhost", &sr, &err) != 0);
	CHECK_CONTAINS(err.msg, "certificate expired");
	CHECK_CONTAINS(sr.msg, "client certificate rejected: certificate has expired");
	memset(&sr, 0, sizeof(sr));
	sr.echo = 1;
	CHECK(attempt("alien", "localhost", &sr, &err) != 0);
	CHECK_CONTAINS(err.msg, "unknown ca");
	CHECK_CONTAINS(sr.msg, "client certificate rejected: unable to get local issuer certificate");

	/* the client checks the server's name: a certificate for gateway.example is not one for localhost */
	{
		SSL_CTX *good = sctx;

		CHECK_EQ_INT(tls_server_ctx(at("ca.pem"), at("elsewhere.pem"), at("elsewhere.key"), &sctx, &err), 0);
		memset(&sr, 0, sizeof(sr));
		CHECK(attempt("k", "localhost", &sr, &err) != 0);
		CHECK_CONTAINS(err.msg, "server certificate rejected: hostname mismatch");
		memset(&sr, 0, sizeof(sr));
		CHECK(attempt("k", "127.0.0.1", &sr, &err) != 0);
		CHECK_CONTAINS(err.msg, "server certificate rejected: IP address mismatch");
		SSL_CTX_free(sctx);
		sctx = good;
	}

	/* a read with a deadline returns in time when the peer says nothing */
	memset(&sr, 0, sizeof(sr));
	sr.hold_ms = 600;
	CHECK_EQ_INT(attempt("k", "localhost", &sr, &err), 1);
	CHECK_CONTAINS(err.msg, "read timed out");

	/* a key file others can read is refused */
	{
		SSL_CTX *x = NULL;

		chmod(at("k.key"), 0644);
		CHECK_EQ_INT(tls_client_ctx(at("ca.pem"), at("k.pem"), at("k.key"), &x, &err), CG_ERR_PERM);
		CHECK_CONTAINS(err.msg, "readable by group or others");
		/* this user's key only: another owner is refused even at mode 0600 (a root-only check) */
		chmod(at("k.key"), 0600);
		if (geteuid() == 0 && chown(at("k.key"), 4242, (gid_t)-1) == 0) {
			CHECK_EQ_INT(tls_client_ctx(at("ca.pem"), at("k.pem"), at("k.key"), &x, &err), CG_ERR_PERM);
			CHECK_CONTAINS(err.msg, "private key owned by uid 4242, not by this user (uid 0)");
			CHECK(chown(at("k.key"), 0, (gid_t)-1) == 0);
		}
		/* a symlink is followed, but the file checked is the file read: a public file behind it is refused */
		chmod(at("k.key"), 0644);
		unlink(at("link.key"));
		CHECK(symlink(at("k.key"), at("link.key")) == 0);
		CHECK_EQ_INT(tls_client_ctx(at("ca.pem"), at("k.pem"), at("link.key"), &x, &err), CG_ERR_PERM);
		CHECK_CONTAINS(err.msg, "readable by group or others");
		CHECK_EQ_INT(tls_client_ctx(at("nope.pem"), NULL, NULL, &x, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "cannot load CA file");
		CHECK_EQ_INT(tls_client_ctx(at("ca.pem"), at("k.pem"), NULL, &x, &err), CG_ERR_ARG);
	}

	/* HOST:PORT */
	CHECK_EQ_INT(tls_split_hostport("localhost:7443", host, p, &err), 0);
	CHECK_STR(host, "localhost");
	CHECK_STR(p, "7443");
	CHECK_EQ_INT(tls_split_hostport("[::1]:1", host, p, &err), 0);
	CHECK_STR(host, "::1");
	CHECK_EQ_INT(tls_split_hostport("localhost", host, p, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "is not HOST:PORT");
	CHECK_EQ_INT(tls_split_hostport("h:99999", host, p, &err), CG_ERR_ARG);
	CHECK_EQ_INT(tls_split_hostport(":1", host, p, &err), CG_ERR_ARG);
	CHECK_EQ_INT(tls_split_hostport("h:1x", host, p, &err), CG_ERR_ARG);

	SSL_CTX_free(sctx);
	close(lfd);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	CGT_DONE();
}

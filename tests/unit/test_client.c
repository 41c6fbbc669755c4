/* test_client.c - client_call and client_recv_expect against a scripted gateway over mutual TLS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cgtest.h"
#include "net/client.h"
#include "net/pki.h"
#include "net/rpc.h"

static char dir[256];
static int lfd;
static char port[8];
static SSL_CTX *sctx;

/* What the scripted gateway answers to the one request it reads. */
enum srv_mode {
	SRV_QUERY_THEN_CHUNK,   /* the right kind, then a stream of one chunk */
	SRV_CHUNK,              /* another kind than the request's */
	SRV_REFUSED,            /* an Error answer, code "refused" */
	SRV_LIMIT,              /* an Error answer, code "limit" */
	SRV_SILENT,             /* close without answering */
};

struct srv {
	enum srv_mode mode;
	char op[32];            /* rpc_op_name of the request received */
	uint32_t version;
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

static int
srv_chunk(struct tls_conn *c, const char *data, struct cg_err *err)
{
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__Chunk ch = CROSSGATE__CHUNK__INIT;

	ch.data.data = (uint8_t *)data;
	ch.data.len = strlen(data);
	ch.last = 1;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_CHUNK;
	resp.chunk = &ch;
	return rpc_write_msg(c, &resp.base, tls_now_ms() + 3000, err);
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	struct tls_conn *c = NULL;
	Crossgate__Request *req = NULL;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__QueryResult qr = CROSSGATE__QUERY_RESULT__INIT;
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	struct cg_err err;
	int fd = accept(lfd, NULL, NULL), r = 0;

	snprintf(s->op, sizeof(s->op), "none");
	if (tls_accept(sctx, fd, tls_now_ms() + 3000, &c, &err) != 0 ||
	    rpc_read_frame(c, 4096, &buf, &cap, &len, tls_now_ms() + 3000, 3000, &err) != 1 ||
	    rpc_request_parse(buf, len, &req, &err) != 0) {
		fprintf(stderr, "server: %s\n", err.msg);
		goto out;
	}
	snprintf(s->op, sizeof(s->op), "%s", rpc_op_name(req));
	s->version = req->version;
	switch (s->mode) {
	case SRV_QUERY_THEN_CHUNK:
		qr.size = 5;
		qr.meta_json = "{}";
		qr.released = 3;
		resp.result_case = CROSSGATE__RESPONSE__RESULT_QUERY;
		resp.query = &qr;
		if ((r = rpc_write_msg(c, &resp.base, tls_now_ms() + 3000, &err)) == 0)
			r = srv_chunk(c, "hello", &err);
		break;
	case SRV_CHUNK:
		r = srv_chunk(c, "", &err);
		break;
	case SRV_REFUSED:
		r = rpc_send_error(c, "refused", "query", "purpose 'ads' is not allowed", 0, tls_now_ms() + 3000, &err);
		break;
	case SRV_LIMIT:
		r = rpc_send_error(c, "limit", "query", "budget exhausted", 0, tls_now_ms() + 3000, &err);
		break;
	case SRV_SILENT:
		break;   /* tls_close below: no answer */
	}
	if (r != 0)
		fprintf(stderr, "server: %s\n", err.msg);
out:
	if (req != NULL)
		crossgate__request__free_unpacked(req, NULL);
	free(buf);
	tls_close(c);
	return NULL;
}

static void
issue(const char *name, enum pki_kind kind, const char *uri)
{
	struct pki_issue_opts o;
	struct cg_err err;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.cn = name;
	o.uri = uri;
	o.days = 5;
	if (kind == PKI_SERVER)
		o.dns[o.ndns++] = "localhost";
	if (pki_issue(at("ca.pem"), at("ca.key"), &o, at(kind == PKI_SERVER ? "gw.pem" : "a.pem"),
	    at(kind == PKI_SERVER ? "gw.key" : "a.key"), &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(2);
	}
}

/* A query request to the scripted gateway; returns client_call's result. */
static int
call(struct srv *s, const struct client_opts *co, struct client **cp, Crossgate__Response **resp, struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__QueryRequest q = CROSSGATE__QUERY_REQUEST__INIT;
	char *metrics[] = { "count" };
	pthread_t th;
	int r;

	q.purpose = "analytics";
	q.metrics = metrics;
	q.n_metrics = 1;
	req.op_case = CROSSGATE__REQUEST__OP_QUERY;
	req.query = &q;
	pthread_create(&th, NULL, srv_main, s);
	r = client_call(co, &req, CROSSGATE__RESPONSE__RESULT_QUERY, "a query", cp, resp, err);
	if (cp == NULL || *cp == NULL)
		pthread_join(th, NULL);   /* nothing follows: the server is done */
	else {
		Crossgate__Response *chunk = (Crossgate__Response *)1;

		/* the client stays open for the stream that follows the answer */
		CHECK_EQ_INT(client_recv_expect(*cp, CROSSGATE__RESPONSE__RESULT_CHUNK, "a stream", &chunk, err), 0);
		if (chunk != NULL && chunk != (Crossgate__Response *)1) {
			CHECK_EQ_INT(chunk->chunk->data.len, 5);
			CHECK(memcmp(chunk->chunk->data.data, "hello", 5) == 0);
			crossgate__response__free_unpacked(chunk, NULL);
		}
		pthread_join(th, NULL);
	}
	return r;
}

int
main(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct client_opts co;
	struct client *c;
	Crossgate__Response *resp;
	struct srv s;
	struct cg_err err;
	char gw[32];
	int r;

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/cg-test-client-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 2;
	if (pki_make_ca(at("ca.pem"), at("ca.key"), "ca", 5, 0, &err) != 0)
		return 2;
	issue("gw", PKI_SERVER, NULL);
	issue("a", PKI_CLIENT, "crossgate:analyst:a");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
		return 2;
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	snprintf(gw, sizeof(gw), "localhost:%s", port);
	CHECK_EQ_INT(tls_server_ctx(at("ca.pem"), at("gw.pem"), at("gw.key"), &sctx, &err), 0);
	memset(&co, 0, sizeof(co));
	co.gateway = gw;
	co.ca = at("ca.pem");
	co.cert = at("a.pem");
	co.key = at("a.key");
	co.timeout_s = 5;

	/* the right kind: the answer, the request went out with its version, the stream follows on *cp */
	memset(&s, 0, sizeof(s));
	s.mode = SRV_QUERY_THEN_CHUNK;
	c = NULL;
	resp = NULL;
	CHECK_EQ_INT(call(&s, &co, &c, &resp, &err), 0);
	CHECK(c != NULL);
	CHECK(resp != NULL && resp->result_case == CROSSGATE__RESPONSE__RESULT_QUERY && resp->query->released == 3);
	CHECK_STR(s.op, "query");
	CHECK_EQ_INT(s.version, RPC_VERSION);
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	client_close(c);

	/* the right kind with cp NULL: the connection is closed by client_call, the answer is the caller's */
	memset(&s, 0, sizeof(s));
	s.mode = SRV_CHUNK;
	{
		Crossgate__Request req = CROSSGATE__REQUEST__INIT;
		Crossgate__StatsRequest sq = CROSSGATE__STATS_REQUEST__INIT;
		pthread_t th;

		req.op_case = CROSSGATE__REQUEST__OP_STATS;
		req.stats = &sq;
		pthread_create(&th, NULL, srv_main, &s);
		resp = NULL;
		CHECK_EQ_INT(client_call(&co, &req, CROSSGATE__RESPONSE__RESULT_CHUNK, "a stats request", NULL, &resp, &err),
		    0);
		pthread_join(th, NULL);
		CHECK(resp != NULL && resp->result_case == CROSSGATE__RESPONSE__RESULT_CHUNK);
		CHECK_STR(s.op, "stats");
		if (resp != NULL)
			crossgate__response__free_unpacked(resp, NULL);
	}

	/* another kind: CG_ERR_FORMAT naming the request, nothing handed back */
	memset(&s, 0, sizeof(s));
	s.mode = SRV_CHUNK;
	c = (struct client *)1;
	resp = (Crossgate__Response *)1;
	CHECK_EQ_INT(call(&s, &co, &c, &resp, &err), CG_ERR_FORMAT);
	CHECK_STR(err.msg, "gateway: unexpected answer to a query");
	CHECK(c == NULL);
	CHECK(resp == NULL);
	CHECK(!client_retryable(CG_ERR_FORMAT, &err));

	/* an Error answer keeps its message and its code */
	memset(&s, 0, sizeof(s));
	s.mode = SRV_REFUSED;
	c = (struct client *)1;
	resp = (Crossgate__Response *)1;
	CHECK_EQ_INT(call(&s, &co, &c, &resp, &err), CG_ERR_POLICY);
	CHECK_STR(err.msg, "gateway: query: purpose 'ads' is not allowed (refused)");
	CHECK(c == NULL);
	CHECK(resp == NULL);
	memset(&s, 0, sizeof(s));
	s.mode = SRV_LIMIT;
	CHECK_EQ_INT(call(&s, &co, &c, &resp, &err), CG_ERR_LIMIT);
	CHECK_STR(err.msg, "gateway: query: budget exhausted (limit)");

	/* no answer at all: retryable */
	memset(&s, 0, sizeof(s));
	s.mode = SRV_SILENT;
	r = call(&s, &co, &c, &resp, &err);
	CHECK_EQ_INT(r, CG_ERR_INCOMPLETE);
	CHECK_STR(err.msg, "gateway closed the connection without an answer");
	CHECK(client_retryable(r, &err));
	CHECK(c == NULL);
	CHECK(resp == NULL);

	/* no connection: client_open's error, out-parameters cleared */
	co.gateway = "localhost";
	c = (struct client *)1;
	resp = (Crossgate__Response *)1;
	{
		Crossgate__Request req = CROSSGATE__REQUEST__INIT;

		req.op_case = CROSSGATE__REQUEST__OP_STATS;
		CHECK_EQ_INT(client_call(&co, &req, CROSSGATE__RESPONSE__RESULT_STATS, "a stats request", &c, &resp, &err),
		    CG_ERR_ARG);
	}
	CHECK_CONTAINS(err.msg, "is not HOST:PORT");
	CHECK(c == NULL);
	CHECK(resp == NULL);

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

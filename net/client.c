/* client.c - see client.h */
#include "net/client.h"

#include <stdlib.h>
#include <string.h>

#include "net/rpc.h"

struct client {
	SSL_CTX *ctx;
	struct tls_conn *tc;
	unsigned timeout_s;
	unsigned char *buf;
	size_t cap;
	int server_error;                  /* the last failure was an Error answer */
	int retry_ok;
};

static int64_t
client_deadline(const struct client *c)
{
	return tls_now_ms() + (int64_t)c->timeout_s * 1000;
}

int
client_open(const struct client_opts *o, struct client **out, struct cg_err *err)
{
	struct client *c;
	char host[TLS_HOST_MAX], port[8];
	int r;

	*out = NULL;
	if (o->gateway == NULL || o->ca == NULL)
		return cg_err_set(err, CG_ERR_ARG, "a gateway address and a CA file are needed");
	if ((r = tls_split_hostport(o->gateway, host, port, err)) != 0)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	c->timeout_s = o->timeout_s ? o->timeout_s : CLIENT_TIMEOUT_DEFAULT;
	if ((r = tls_client_ctx(o->ca, o->cert, o->key, &c->ctx, err)) != 0)
		goto fail;
	if ((r = tls_connect(c->ctx, host, port, client_deadline(c), &c->tc, err)) != 0) {
		cg_err_prefix(err, "gateway %s", o->gateway);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	client_close(c);
	return r;
}

void
client_close(struct client *c)
{
	if (c == NULL)
		return;
	tls_close(c->tc);
	if (c->ctx != NULL)
		SSL_CTX_free(c->ctx);
	free(c->buf);
	free(c);
}

int
client_send(struct client *c, Crossgate__Request *req, struct cg_err *err)
{
	req->version = RPC_VERSION;
	return rpc_write_msg(c->tc, &req->base, client_deadline(c), err);
}

int
client_send_raw(struct client *c, const void *buf, size_t n, struct cg_err *err)
{
	return tls_write(c->tc, buf, n, client_deadline(c), err);
}

int
client_recv(struct client *c, Crossgate__Response **out, struct cg_err *err)
{
	Crossgate__Response *resp = NULL;
	const Crossgate__Error *e;
	size_t len;
	int r;

	*out = NULL;
	/* The first byte may take as long as the server's commit or export: the same budget again. */
	r = rpc_read_frame(c->tc, RPC_RESPONSE_MAX, &c->buf, &c->cap, &len, client_deadline(c), c->timeout_s * 1000u,
	    err);
	if (r == 0)
		return cg_err_set(err, CG_ERR_INCOMPLETE, "gateway closed the connection without an answer");
	if (r < 0)
		return r;
	if ((r = rpc_response_parse(c->buf, len, &resp, err)) != 0)
		return cg_err_prefix(err, "gateway");
	if (resp->result_case != CROSSGATE__RESPONSE__RESULT_ERROR) {
		*out = resp;
		return 0;
	}
	e = resp->error;
	if (strcmp(e->code, "refused") == 0 || strcmp(e->code, "rejected") == 0)
		r = CG_ERR_POLICY;
	else if (strcmp(e->code, "limit") == 0)
		r = CG_ERR_LIMIT;
	else if (strcmp(e->code, "malformed") == 0)
		r = CG_ERR_FORMAT;
	else
		r = CG_ERR_IO;
	cg_err_set(err, r, "gateway: %s: %s (%s)", e->operation[0] ? e->operation : "request", e->message, e->code);
	crossgate__response__free_unpacked(resp, NULL);
	return r;
}

int
client_recv_expect(struct client *c, Crossgate__Response__ResultCase expected, const char *what,
    Crossgate__Response **out, struct cg_err *err)
{
	Crossgate__Response *resp = NULL;
	int r;

	*out = NULL;
	if ((r = client_recv(c, &resp, err)) != 0)
		return r;
	if (resp->result_case != expected) {
		crossgate__response__free_unpacked(resp, NULL);
		return cg_err_set(err, CG_ERR_FORMAT, "gateway: unexpected answer to %s", what);
	}
	*out = resp;
	return 0;
}

int
client_call(const struct client_opts *o, Crossgate__Request *req, Crossgate__Response__ResultCase expected,
    const char *what, struct client **cp, Crossgate__Response **resp, struct cg_err *err)
{
	struct client *c = NULL;
	int r;

	*resp = NULL;
	if (cp != NULL)
		*cp = NULL;
	if ((r = client_open(o, &c, err)) != 0)
		return r;
	if ((r = client_send(c, req, err)) != 0 || (r = client_recv_expect(c, expected, what, resp, err)) != 0)
		goto out;
	if (cp != NULL) {
		*cp = c;
		c = NULL;   /* transferred */
	}
out:
	client_close(c);
	return r;
}

int
client_retryable(int code, const struct cg_err *err)
{
	if (code == CG_ERR_IO || code == CG_ERR_INCOMPLETE)
		return 1;
	(void)err;
	return 0;
}

/* monitor.c - see monitor.h */
#include "gateway/monitor.h"
#include "gateway/logline.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sodium.h>
#include <jansson.h>

#include "audit/note.h"
#include "crypto/seal.h"
#include "crypto/token.h"
#include "gateway/audience.h"
#include "gateway/erase.h"
#include "gateway/ingest.h"
#include "proto/monitor.pb-c.h"

typedef Crossgate__Monitor__MonitorRequest monitor_req;
typedef Crossgate__Monitor__MonitorResponse monitor_resp;

/* ---- the monitor: one request, validated field by field ---- */

/* Which fields each op takes; every other field must be empty. */
enum {
	MF_WRAPPED = 1, MF_BATCH_ID = 2, MF_KEY = 4, MF_KINDS = 8, MF_TOKENS = 16, MF_CHECKPOINT = 32, MF_NAME = 64,
	MF_DIGEST = 128,
};

/* A TOMBSTONES request (a kind and a token each) and its answer (32 bytes each) fit in one message. */
_Static_assert(KEYFILE_AGENT_TOMBSTONES_MAX * (1 + KEYFILE_AGENT_TOKEN_LEN) + 64 <= MONITOR_MSG_MAX,
    "KEYFILE_AGENT_TOMBSTONES_MAX does not fit a monitor message");

static unsigned
monitor_fields(const monitor_req *q)
{
	return (q->wrapped.len ? MF_WRAPPED : 0) | (q->batch_id.len ? MF_BATCH_ID : 0) | (q->key.len ? MF_KEY : 0) |
	    (q->kinds.len ? MF_KINDS : 0) | (q->tokens.len ? MF_TOKENS : 0) |
	    (q->checkpoint.len ? MF_CHECKPOINT : 0) | (q->name != NULL && q->name[0] != '\0' ? MF_NAME : 0) |
	    (q->digest.len ? MF_DIGEST : 0);
}

static int
monitor_check_fields(const monitor_req *q, unsigned want, struct cg_err *err)
{
	unsigned have = monitor_fields(q);

	if (have & ~want)
		return cg_err_set(err, CG_ERR_FORMAT, "fields the op does not take");
	if ((have & want) != want)
		return cg_err_set(err, CG_ERR_FORMAT, "a field the op needs is missing");
	return 0;
}

static int
monitor_len(const char *what, size_t got, size_t want, struct cg_err *err)
{
	if (got != want)
		return cg_err_set(err, CG_ERR_FORMAT, "%s of %zu bytes, not %zu", what, got, want);
	return 0;
}

/* Perform a valid request into r; the key of an answer lives in `key` (wiped by the caller). */
static int
monitor_do(const struct monitor_keys *k, const monitor_req *q, monitor_resp *r, unsigned char key[32],
    unsigned char wrapped[INGEST_WRAPPED_KEY_LEN], unsigned char (*tombs)[32], char **note, struct cg_err *err)
{
	struct token toks[KEYFILE_AGENT_TOMBSTONES_MAX];
	struct checkpoint cp;
	size_t i, n;
	int rc;

	if (q->base.n_unknown_fields != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "unknown fields");
	switch (q->op) {
	case CROSSGATE__MONITOR__OP__UNWRAP_BATCH_KEY:
		if ((rc = monitor_check_fields(q, MF_WRAPPED, err)) != 0 ||
		    (rc = monitor_len("wrapped key", q->wrapped.len, SEAL_WRAPPED_LEN, err)) != 0 ||
		    (rc = seal_unwrap_key(q->wrapped.data, q->wrapped.len, k->enc->pub, k->enc->key, key, err)) != 0)
			return rc;
		r->key.data = key;
		r->key.len = 32;
		return 0;
	case CROSSGATE__MONITOR__OP__STORAGE_WRAP:
		if ((rc = monitor_check_fields(q, MF_BATCH_ID | MF_KEY, err)) != 0 ||
		    (rc = monitor_len("batch id", q->batch_id.len, 16, err)) != 0 ||
		    (rc = monitor_len("batch key", q->key.len, 32, err)) != 0)
			return rc;
		if ((rc = ingest_wrap_batch_key(k->storage, q->batch_id.data, q->key.data, wrapped)) != 0)
			return cg_err_set(err, rc, "cannot seal the batch key");
		r->wrapped.data = wrapped;
		r->wrapped.len = INGEST_WRAPPED_KEY_LEN;
		return 0;
	case CROSSGATE__MONITOR__OP__STORAGE_UNWRAP:
		if ((rc = monitor_check_fields(q, MF_BATCH_ID | MF_WRAPPED, err)) != 0 ||
		    (rc = monitor_len("batch id", q->batch_id.len, 16, err)) != 0 ||
		    (rc = monitor_len("stored batch key", q->wrapped.len, INGEST_WRAPPED_KEY_LEN, err)) != 0 ||
		    (rc = ingest_unwrap_batch_key(k->storage, q->batch_id.data, q->wrapped.data, q->wrapped.len, key,
		    err)) != 0)
			return rc;
		r->key.data = key;
		r->key.len = 32;
		return 0;
	case CROSSGATE__MONITOR__OP__TOMBSTONES:
		if ((rc = monitor_check_fields(q, MF_KINDS | MF_TOKENS, err)) != 0)
			return rc;
		n = q->kinds.len;
		if (n > KEYFILE_AGENT_TOMBSTONES_MAX)
			return cg_err_set(err, CG_ERR_LIMIT, "more than %d tokens", KEYFILE_AGENT_TOMBSTONES_MAX);
		if ((rc = monitor_len("tokens", q->tokens.len, n * TOKEN_LEN, err)) != 0)
			return rc;
		for (i = 0; i < n; i++) {
			if (q->kinds.data[i] != TOKEN_KIND_EMAIL && q->kinds.data[i] != TOKEN_KIND_PHONE)
				return cg_err_set(err, CG_ERR_FORMAT, "token %zu: unknown kind", i);
			toks[i].kind = q->kinds.data[i];
			memcpy(toks[i].value, q->tokens.data + i * TOKEN_LEN, TOKEN_LEN);
		}
		rc = erase_tombstones(k->storage, toks, n, tombs, err);
		sodium_memzero(toks, sizeof(toks));
		if (rc != 0)
			return rc;
		r->tombstones.data = (unsigned char *)tombs;
		r->tombstones.len = n * 32;
		return 0;
	case CROSSGATE__MONITOR__OP__SIGN_CHECKPOINT:
		/* Only a well-formed checkpoint of the named log: never arbitrary text under the gateway's key. */
		if ((rc = monitor_check_fields(q, MF_CHECKPOINT | MF_NAME, err)) != 0)
			return rc;
		if (q->checkpoint.len > NOTE_NAME_MAX + 80 ||
		    checkpoint_parse((const char *)q->checkpoint.data, q->checkpoint.len, &cp, err) != 0)
			return cg_err_set(err, CG_ERR_FORMAT, "not a checkpoint body");
		if (strcmp(cp.origin, q->name) != 0)
			return cg_err_set(err, CG_ERR_FORMAT, "the checkpoint's origin is not the signer's name");
		if ((rc = note_sign((const char *)q->checkpoint.data, q->checkpoint.len, q->name, k->sign->key, note,
		    err)) != 0)
			return rc;
		r->note = *note;
		return 0;
	case CROSSGATE__MONITOR__OP__REFUSAL_MAC:
		if ((rc = monitor_check_fields(q, MF_DIGEST, err)) != 0 ||
		    (rc = monitor_len("digest", q->digest.len, 32, err)) != 0 ||
		    (rc = audience_refusal_mac(k->storage, q->digest.data, key, err)) != 0)
			return rc;
		r->mac.data = key;
		r->mac.len = 32;
		return 0;
	default:
		return cg_err_set(err, CG_ERR_FORMAT, "unknown op %d", (int)q->op);
	}
}

int
monitor_answer(const struct monitor_keys *k, const unsigned char *req, size_t len, unsigned char **resp,
    size_t *resp_len, int *refused)
{
	monitor_resp r = CROSSGATE__MONITOR__MONITOR_RESPONSE__INIT;
	unsigned char key[32], wrapped[INGEST_WRAPPED_KEY_LEN], tombs[KEYFILE_AGENT_TOMBSTONES_MAX][32];
	monitor_req *q = NULL;
	struct cg_err err;
	char *note = NULL;   /* r.note starts as protobuf-c's static empty string: never freed */
	size_t n;
	int rc;

	*resp = NULL;
	*resp_len = 0;
	*refused = 0;
	cg_err_clear(&err);
	if (len > MONITOR_MSG_MAX)
		rc = cg_err_set(&err, CG_ERR_LIMIT, "request of %zu bytes", len);
	else if ((q = crossgate__monitor__monitor_request__unpack(NULL, len, req)) == NULL)
		rc = cg_err_set(&err, CG_ERR_FORMAT, "not a MonitorRequest");
	else
		rc = monitor_do(k, q, &r, key, wrapped, tombs, &note, &err);
	if (rc != 0) {
		*refused = 1;
		r.note = (char *)protobuf_c_empty_string;
		r.key.len = r.wrapped.len = r.tombstones.len = r.mac.len = 0;
		r.error = err.msg;
		r.code = rc < 0 && rc >= CG_ERR_MIN ? rc : CG_ERR_INTERNAL;
	} else
		r.ok = 1;
	n = crossgate__monitor__monitor_response__get_packed_size(&r);
	if ((*resp = malloc(n > 0 ? n : 1)) != NULL) {
		*resp_len = crossgate__monitor__monitor_response__pack(&r, *resp);
	}
	if (q != NULL) {
		/* the request may carry a batch key or tokens */
		sodium_memzero(q->key.data, q->key.len);
		sodium_memzero(q->tokens.data, q->tokens.len);
		crossgate__monitor__monitor_request__free_unpacked(q, NULL);
	}
	free(note);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(tombs, sizeof(tombs));
	return *resp != NULL ? 0 : CG_ERR_NOMEM;
}

/* ---- framing: a 4-byte big-endian length, then the message ---- */

static int
monitor_write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1: all n bytes; 0: end of file before the first byte; -1: error or a short message. */
static int
monitor_read_all(int fd, unsigned char *p, size_t n)
{
	size_t got = 0;
	ssize_t m;

	while (got < n) {
		if ((m = read(fd, p + got, n - got)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (m == 0 && got == 0)
			return 0;
		if (m == 0) {
			errno = 0;           /* cut short: an errno left from before would be reported */
			return -1;
		}
		got += (size_t)m;
	}
	return 1;
}

static int
monitor_send(int fd, const unsigned char *p, size_t n)
{
	unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
	    (unsigned char)n };

	return monitor_write_all(fd, h, 4) == 0 && monitor_write_all(fd, p, n) == 0 ? 0 : -1;
}

/* The next message into buf (MONITOR_MSG_MAX bytes): 1, 0 at end of file, negative CG_ERR_* otherwise. */
static int
monitor_recv(int fd, unsigned char *buf, size_t *len, struct cg_err *err)
{
	unsigned char h[4];
	size_t n;
	int r;

	if ((r = monitor_read_all(fd, h, 4)) <= 0)
		return r == 0 ? 0 : cg_err_set(err, CG_ERR_IO, "monitor channel: %s", r < 0 && errno ? strerror(errno) :
		    "cut short");
	n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n == 0 || n > MONITOR_MSG_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "monitor channel: a message of %zu bytes", n);
	if (monitor_read_all(fd, buf, n) != 1)
		return cg_err_set(err, CG_ERR_IO, "monitor channel: message cut short");
	*len = n;
	return 1;
}

int
monitor_serve(const struct monitor_keys *k, int fd, uint64_t *served, struct cg_err *err)
{
	unsigned char *buf, *resp;
	size_t len = 0, resp_len;
	int r, refused;

	if ((buf = malloc(MONITOR_MSG_MAX)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	for (;;) {
		if ((r = monitor_recv(fd, buf, &len, err)) <= 0)
			break;
		r = monitor_answer(k, buf, len, &resp, &resp_len, &refused);
		sodium_memzero(buf, len);
		if (r != 0) {
			r = cg_err_set(err, r, "monitor: out of memory");
			break;
		}
		r = monitor_send(fd, resp, resp_len);
		sodium_memzero(resp, resp_len);
		free(resp);
		if (r != 0) {
			r = cg_err_set(err, CG_ERR_IO, "monitor channel: %s", strerror(errno));
			break;
		}
		(*served)++;
	}
	free(buf);
	return r;
}

/* ---- the worker's side ---- */

struct monitor_client {
	int fd;
	pthread_mutex_t mu;                  /* one request at a time on fd */
	unsigned char buf[MONITOR_MSG_MAX];
	struct keyfile_agent agent;
	struct keyfile_key enc, sign, storage;
};

/* One request and its answer; *out is the unpacked response (ok), to free with monitor_resp_free. */
static int
monitor_call(struct monitor_client *c, const monitor_req *q, monitor_resp **out, struct cg_err *err)
{
	unsigned char *p;
	size_t n, len = 0;
	int r;

	*out = NULL;
	n = crossgate__monitor__monitor_request__get_packed_size(q);
	if (n > MONITOR_MSG_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "monitor request of %zu bytes", n);
	pthread_mutex_lock(&c->mu);
	p = c->buf;
	n = crossgate__monitor__monitor_request__pack(q, p);
	r = monitor_send(c->fd, p, n) == 0 ? 1 : cg_err_set(err, CG_ERR_IO, "monitor channel: %s", strerror(errno));
	sodium_memzero(p, n);
	if (r == 1 && (r = monitor_recv(c->fd, p, &len, err)) == 0)
		r = cg_err_set(err, CG_ERR_IO, "the monitor is gone");
	if (r == 1) {
		*out = crossgate__monitor__monitor_response__unpack(NULL, len, p);
		sodium_memzero(p, len);
		r = *out != NULL ? 0 : cg_err_set(err, CG_ERR_FORMAT, "monitor: not a MonitorResponse");
	}
	pthread_mutex_unlock(&c->mu);
	if (r != 0)
		return r;
	if (!(*out)->ok) {
		r = (*out)->code < 0 && (*out)->code >= CG_ERR_MIN ? (*out)->code : CG_ERR_INTERNAL;
		cg_err_set(err, r, "monitor: %.400s", (*out)->error != NULL ? (*out)->error : "refused");
		crossgate__monitor__monitor_response__free_unpacked(*out, NULL);
		*out = NULL;
	}
	return r;
}

static void
monitor_resp_free(monitor_resp *r)
{
	if (r == NULL)
		return;
	sodium_memzero(r->key.data, r->key.len);
	sodium_memzero(r->tombstones.data, r->tombstones.len);
	sodium_memzero(r->mac.data, r->mac.len);
	crossgate__monitor__monitor_response__free_unpacked(r, NULL);
}

/* Exactly `len` bytes (a key, a MAC, a sealed key: `what`) out of an answer's field b; the answer is freed. */
static int
monitor_out(monitor_resp *r, const ProtobufCBinaryData *b, const char *what, unsigned char *out, size_t len,
    struct cg_err *err)
{
	int rc = 0;

	if (b->len != len)
		rc = cg_err_set(err, CG_ERR_FORMAT, "monitor: a %s of %zu bytes", what, b->len);
	else
		memcpy(out, b->data, len);
	monitor_resp_free(r);
	return rc;
}

static int
monitor_unwrap_key(void *ctx, const unsigned char *wrapped, size_t len, unsigned char key[32], struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc;

	if (len != SEAL_WRAPPED_LEN)   /* the monitor would refuse it too; say it as seal_unwrap_key does */
		return cg_err_set(err, CG_ERR_FORMAT, "wrapped key has %zu bytes, expected %d", len, SEAL_WRAPPED_LEN);
	q.op = CROSSGATE__MONITOR__OP__UNWRAP_BATCH_KEY;
	q.wrapped.data = (unsigned char *)wrapped;
	q.wrapped.len = len;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	return monitor_out(r, &r->key, "key", key, 32, err);
}

static int
monitor_storage_wrap(void *ctx, const unsigned char batch_id[16], const unsigned char key[32],
    unsigned char wrapped[KEYFILE_AGENT_WRAPPED_LEN], struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc = 0;

	q.op = CROSSGATE__MONITOR__OP__STORAGE_WRAP;
	q.batch_id.data = (unsigned char *)batch_id;
	q.batch_id.len = 16;
	q.key.data = (unsigned char *)key;
	q.key.len = 32;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	return monitor_out(r, &r->wrapped, "sealed key", wrapped, KEYFILE_AGENT_WRAPPED_LEN, err);
}

static int
monitor_storage_unwrap(void *ctx, const unsigned char batch_id[16], const unsigned char *wrapped, size_t len,
    unsigned char key[32], struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc;

	q.op = CROSSGATE__MONITOR__OP__STORAGE_UNWRAP;
	q.batch_id.data = (unsigned char *)batch_id;
	q.batch_id.len = 16;
	q.wrapped.data = (unsigned char *)wrapped;
	q.wrapped.len = len;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	return monitor_out(r, &r->key, "key", key, 32, err);
}

static int
monitor_tombstones(void *ctx, const unsigned char *kinds, const unsigned char *tokens, size_t n, unsigned char *out,
    struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc = 0;

	if (n == 0)
		return 0;
	q.op = CROSSGATE__MONITOR__OP__TOMBSTONES;
	q.kinds.data = (unsigned char *)kinds;
	q.kinds.len = n;
	q.tokens.data = (unsigned char *)tokens;
	q.tokens.len = n * TOKEN_LEN;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	if (r->tombstones.len != n * 32)
		rc = cg_err_set(err, CG_ERR_FORMAT, "monitor: %zu bytes of tombstones", r->tombstones.len);
	else
		memcpy(out, r->tombstones.data, n * 32);
	monitor_resp_free(r);
	return rc;
}

static int
monitor_sign_note(void *ctx, const char *body, size_t len, const char *name, char **note, struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc;

	*note = NULL;
	q.op = CROSSGATE__MONITOR__OP__SIGN_CHECKPOINT;
	q.checkpoint.data = (unsigned char *)body;
	q.checkpoint.len = len;
	q.name = (char *)name;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	if (r->note == NULL || r->note[0] == '\0')
		rc = cg_err_set(err, CG_ERR_FORMAT, "monitor: no note in the answer");
	else if ((*note = strdup(r->note)) == NULL)
		rc = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	monitor_resp_free(r);
	return rc;
}

static int
monitor_refusal_mac(void *ctx, const unsigned char digest[32], unsigned char out[32], struct cg_err *err)
{
	monitor_req q = CROSSGATE__MONITOR__MONITOR_REQUEST__INIT;
	monitor_resp *r;
	int rc = 0;

	q.op = CROSSGATE__MONITOR__OP__REFUSAL_MAC;
	q.digest.data = (unsigned char *)digest;
	q.digest.len = 32;
	if ((rc = monitor_call(ctx, &q, &r, err)) != 0)
		return rc;
	return monitor_out(r, &r->mac, "MAC", out, 32, err);
}

static void
monitor_handle(struct keyfile_key *h, const struct keyfile_key *real, const struct keyfile_agent *agent)
{
	memset(h, 0, sizeof(*h));
	h->type = real->type;
	memcpy(h->id, real->id, KEYFILE_ID_LEN);
	memcpy(h->pub, real->pub, sizeof(h->pub));
	h->agent = agent;
}

int
monitor_client_new(int fd, const struct keyfile_key *enc, const struct keyfile_key *sign,
    const struct keyfile_key *storage, struct monitor_client **out, struct cg_err *err)
{
	struct monitor_client *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	c->fd = fd;
	pthread_mutex_init(&c->mu, NULL);
	c->agent.ctx = c;
	c->agent.unwrap_key = monitor_unwrap_key;
	c->agent.storage_wrap = monitor_storage_wrap;
	c->agent.storage_unwrap = monitor_storage_unwrap;
	c->agent.tombstones = monitor_tombstones;
	c->agent.sign_note = monitor_sign_note;
	c->agent.refusal_mac = monitor_refusal_mac;
	monitor_handle(&c->enc, enc, &c->agent);
	monitor_handle(&c->sign, sign, &c->agent);
	monitor_handle(&c->storage, storage, &c->agent);
	*out = c;
	return 0;
}

void
monitor_client_keys(const struct monitor_client *c, struct monitor_keys *out)
{
	out->enc = &c->enc;
	out->sign = &c->sign;
	out->storage = &c->storage;
}

void
monitor_client_free(struct monitor_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->mu);
	sodium_memzero(c->buf, sizeof(c->buf));
	free(c);
}

/* ---- the monitor process: fork, serve, restart ---- */

static volatile sig_atomic_t monitor_child;       /* the worker's pid, 0 between workers */
static volatile sig_atomic_t monitor_stopping;

static void
monitor_on_signal(int sig)
{
	pid_t p = (pid_t)monitor_child;

	monitor_stopping = 1;
	if (p > 0)
		(void)kill(p, sig);
}

void
monitor_log(FILE *log, const char *level, const char *event, ...)
{
	char *line;
	va_list ap;

	va_start(ap, event);
	line = logline_vmake(level, event, ap);
	va_end(ap);
	if (line != NULL) {
		fprintf(log, "%s\n", line);
		fflush(log);
		free(line);
	}
}

int
monitor_run(const struct monitor_keys *k, monitor_worker_fn worker, void (*wipe)(void *), void *arg, FILE *log,
    struct cg_err *err)
{
	struct monitor_client *c;
	struct monitor_keys handles;
	struct sigaction sa, old_term, old_int;
	struct cg_err serr;
	unsigned restarts = 0, fast = 0;
	uint64_t served;
	time_t started;
	pid_t pid, me = getpid();
	int sv[2], st = 0, r, status = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = monitor_on_signal;
	sigemptyset(&sa.sa_mask);
	monitor_stopping = 0;
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	for (;;) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			cg_err_set(err, CG_ERR_IO, "socketpair: %s", strerror(errno));
			break;
		}
		fflush(NULL);
		started = time(NULL);
		if ((pid = fork()) < 0) {
			cg_err_set(err, CG_ERR_IO, "fork: %s", strerror(errno));
			close(sv[0]);
			close(sv[1]);
			break;
		}
		if (pid == 0) {
			/* the worker: no key from here on, and no life without the monitor */
			sigaction(SIGTERM, &old_term, NULL);
			sigaction(SIGINT, &old_int, NULL);
			close(sv[0]);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != me)
				_exit(1);
			r = monitor_client_new(sv[1], k->enc, k->sign, k->storage, &c, &serr);
			wipe(arg);
			if (r != 0)
				_exit(1);
			monitor_client_keys(c, &handles);
			r = worker(&handles, restarts, arg);
			monitor_client_free(c);
			_exit(r);
		}
		monitor_child = pid;
		close(sv[1]);
		if (monitor_stopping)   /* a stop that came before the worker's pid was known */
			(void)kill(pid, SIGTERM);
		served = 0;
		cg_err_clear(&serr);
		if (monitor_serve(k, sv[0], &served, &serr) != 0) {
			/* a worker that breaks the protocol is not to be trusted further */
			monitor_log(log, "error", "worker-protocol", "process", json_string("monitor"), "pid",
			    json_integer(pid), "reason", json_string(serr.msg), NULL);
			(void)kill(pid, SIGKILL);
		}
		close(sv[0]);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		monitor_child = 0;
		if (WIFEXITED(st)) {
			status = WEXITSTATUS(st);
			break;
		}
		status = 1;
		if (monitor_stopping && (WTERMSIG(st) == SIGTERM || WTERMSIG(st) == SIGINT)) {
			/* the stop came while the worker was still setting up, before its own handlers: nothing in flight */
			status = 0;
			break;
		}
		if (monitor_stopping) {
			cg_err_set(err, CG_ERR_INTERNAL, "the worker died (signal %d) while stopping", WTERMSIG(st));
			break;
		}
		fast = time(NULL) - started < MONITOR_FAST_DEATH_SECONDS ? fast + 1 : 0;
		if (fast >= MONITOR_FAST_DEATHS_MAX) {
			cg_err_set(err, CG_ERR_INTERNAL, "the worker died %d times in a row at its start (signal %d): "
			    "not restarted", MONITOR_FAST_DEATHS_MAX, WTERMSIG(st));
			break;
		}
		monitor_log(log, "warn", "worker-died", "process", json_string("monitor"), "signal",
		    json_integer(WTERMSIG(st)), "restarts", json_integer(restarts + 1), NULL);
		restarts++;
	}
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	return status;
}

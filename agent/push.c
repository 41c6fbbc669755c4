/* push.c - see push.h */
#include "agent/push.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sodium.h>

void
push_opts_default(struct push_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->retries = PUSH_RETRIES_DEFAULT;
	o->backoff_ms = PUSH_BACKOFF_MS_DEFAULT;
	o->backoff_max_ms = PUSH_BACKOFF_MAX_MS_DEFAULT;
}

static void
push_sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One attempt: connect, announce, stream the file, wait for the answer. */
static int
push_once(const struct push_opts *o, const char *path, FILE *f, uint64_t size, struct push_result *res,
    struct cg_err *err)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT;
	Crossgate__PushRequest pr = CROSSGATE__PUSH_REQUEST__INIT;
	Crossgate__Response *resp = NULL;
	struct client *c = NULL;
	unsigned char *b = NULL;
	uint64_t sent = 0;
	size_t n;
	int r;

	if (fseek(f, 0, SEEK_SET) != 0)
		return cg_err_set(err, CG_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
	if ((r = client_open(&o->client, &c, err)) != 0)
		return r;
	pr.size = size;
	req.op_case = CROSSGATE__REQUEST__OP_PUSH;
	req.push = &pr;
	if ((r = client_send(c, &req, err)) != 0)
		goto out;
	if ((b = malloc(256 * 1024)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The file is already frames (header, records, trailer): it goes out byte for byte. */
	while (sent < size) {
		size_t want = size - sent < 256 * 1024 ? (size_t)(size - sent) : 256 * 1024;

		if ((n = fread(b, 1, want, f)) == 0) {
			r = cg_err_set(err, CG_ERR_IO, "%s: changed while being pushed", path);
			goto out;
		}
		if ((r = client_send_raw(c, b, n, err)) != 0) {
			/* The server may have refused early (e.g. another partner's batch): its answer says why. */
			struct cg_err e2;

			if (client_recv(c, &resp, &e2) != 0 && e2.code != CG_ERR_INCOMPLETE && e2.code != CG_ERR_IO) {
				*err = e2;
				r = e2.code;
			}
			goto out;
		}
		sent += n;
	}
	if ((r = client_recv_expect(c, CROSSGATE__RESPONSE__RESULT_PUSH, "a push", &resp, err)) != 0)
		goto out;
	res->duplicate = resp->push->status == CROSSGATE__PUSH_STATUS__PUSH_STATUS_DUPLICATE;
	res->records = resp->push->records;
	res->bytes = size;
	snprintf(res->partner, sizeof(res->partner), "%s", resp->push->partner);
	if (resp->push->batch_id.len == 16)
		memcpy(res->batch_id, resp->push->batch_id.data, 16);
	r = 0;
out:
	if (resp != NULL)
		crossgate__response__free_unpacked(resp, NULL);
	free(b);
	client_close(c);
	return r;
}

int
push_batch(const struct push_opts *o, const char *path, struct push_result *res, struct cg_err *err)
{
	struct stat sb;
	FILE *f;
	unsigned wait = o->backoff_ms ? o->backoff_ms : PUSH_BACKOFF_MS_DEFAULT;
	unsigned wmax = o->backoff_max_ms ? o->backoff_max_ms : PUSH_BACKOFF_MAX_MS_DEFAULT;
	int64_t t0 = tls_now_ms();
	int r;

	memset(res, 0, sizeof(*res));
	if ((f = fopen(path, "rb")) == NULL)
		return cg_err_set(err, CG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &sb) != 0 || sb.st_size <= 0) {
		fclose(f);
		return cg_err_set(err, CG_ERR_FORMAT, "%s: empty or unreadable batch file", path);
	}
	for (;;) {
		res->attempts++;
		cg_err_clear(err);
		r = push_once(o, path, f, (uint64_t)sb.st_size, res, err);
		if (r == 0 || !client_retryable(r, err) || res->attempts > o->retries)
			break;
		if (o->log != NULL)
			fprintf(o->log, "crossgate: %s: attempt %u failed (%s); retrying in %u ms\n", path, res->attempts,
			    err->msg, wait);
		/* Jitter: agents cut off together must not all come back together. */
		push_sleep_ms(wait / 2 + randombytes_uniform(wait / 2 + 1));
		wait = wait * 2 > wmax ? wmax : wait * 2;
	}
	fclose(f);
	res->seconds = (double)(tls_now_ms() - t0) / 1000.0;
	if (r != 0 && client_retryable(r, err) && res->attempts > 1)
		cg_err_prefix(err, "%s: gave up after %u attempts", path, res->attempts);
	else if (r != 0)
		cg_err_prefix(err, "%s", path);
	return r;
}

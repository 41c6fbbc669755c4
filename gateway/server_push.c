/* server_push.c - see server.h; the push request (server_int.h) */
#include "gateway/server.h"
#include "gateway/server_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "net/tls.h"
#include "gateway/ingest.h"
#include "proto/batch.h"
#include "proto/frame.h"
#include "net/rpc.h"

/* ---- push ---- */

/* Map the memory spool for writing (if it is not already): records are then decrypted into place. */
static void
server_spool_map(struct server_memspool *ms, uint64_t size)
{
	void *m;

	if (ms->map != NULL || size == 0 || size > SIZE_MAX)
		return;
	m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(ms->f), 0);
	/* On failure the spool is written to from offset 0: all `size` bytes. */
	if (m != MAP_FAILED) {
		ms->map = m;
		ms->map_len = (size_t)size;
		ms->made = 0;
	}
}

/*
 * Make the mapped spool's pages up to `need` (and SERVER_MAP_STEP beyond) in
 * one call, not a fault per page; ms->made is how far they are made.  Without
 * MADV_POPULATE_WRITE (Linux < 5.14) the pages fault in as they are written.
 */
static int
server_spool_populate(struct server_memspool *ms, size_t size, size_t need)
{
	size_t to;

	if (need <= ms->made)
		return 0;
	to = (need / SERVER_MAP_STEP + 1) * SERVER_MAP_STEP;   /* a multiple of the page size, as madvise needs */
	if (to > size)
		to = size;
#ifdef MADV_POPULATE_WRITE
	if (madvise(ms->map + ms->made, to - ms->made, MADV_POPULATE_WRITE) != 0) {
		/*
		 * EINVAL: a kernel without it; pages fault in as they are written.
		 * Anything else (ENOMEM, EFAULT): writing there would raise SIGBUS
		 * or wake the OOM killer and take the whole gateway down; this push
		 * fails instead.
		 */
		if (errno != EINVAL)
			return -1;
		to = size;
	}
#else
	to = size;
#endif
	ms->made = to;
	return 0;
}

int
server_write_frame(FILE *f, const unsigned char *p, size_t n)
{
	unsigned char hdr[FRAME_HDR_LEN];

	frame_header(n, hdr);
	return fwrite(hdr, 1, sizeof(hdr), f) == sizeof(hdr) && (n == 0 || fwrite(p, 1, n, f) == n) ? 0 : -1;
}

int
server_push(struct server_conn *c, const Crossgate__PushRequest *req)
{
	struct server *s = c->s;
	const struct policy_network *net = &s->pol->net;
	Crossgate__BatchHeader *hdr = NULL;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__PushResult pr = CROSSGATE__PUSH_RESULT__INIT;
	struct ingest_keys keys;
	struct ingest_result res;
	struct cg_err err;
	char path[1200] = "", msg[CG_ERR_MSG_MAX + 128];
	FILE *f = NULL;
	struct server_memspool ms;
	unsigned char *b = NULL, *buf = NULL;   /* b: buf, or a window on ms.map */
	uint64_t got = 0, frames = 0;
	size_t len, have = 0, bcap, off = 0;
	int64_t t0 = tls_now_us(), t1, t2, deadline;
	uint64_t renewed_at = 0;
	int r, keep = 0, progress = 0;

	if (req->size > net->push_max_bytes) {
		snprintf(msg, sizeof(msg), "batch of %llu bytes is over the limit of %llu bytes",
		    (unsigned long long)req->size, (unsigned long long)net->push_max_bytes);
		server_error(c, "limit", "push", msg);
		server_refused(c, "push", msg, NULL);
		return 0;
	}
	server_spool_mem(s, req->size, path, &ms);
	if ((f = ms.f) == NULL && (r = server_spool_open(s, "push", c->id, path, &f, &err)) != 0) {
		server_error(c, "internal", "push", "the gateway cannot spool the batch; retry later");
		server_slog(s, "error", "spool-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(err.msg), NULL);
		return 0;
	}
	/*
	 * The batch arrives in bulk reads; frames are cut out of the buffer as they
	 * complete (each checked against its cap before it counts), whole frames go
	 * to the spool, and nothing past the announced size is ever read.  Each
	 * SERVER_PUSH_RENEW bytes of completed frames renew the read deadline: a
	 * push slower than that per read_timeout is dropped.
	 *
	 * A memory spool is mapped, and the buffer is a window sliding along it:
	 * records are decrypted into place and "writing" checked frames is moving
	 * the window past them.  A file spool has a buffer of its own: a TLS read
	 * gives at most one record (16 KiB), so checked frames gather in it and go
	 * to the spool in writes of about SERVER_SPOOL_WRITE bytes, not one system
	 * call per record.
	 */
	if (ms.f != NULL)
		server_spool_map(&ms, req->size);
	if (ms.map != NULL) {
		b = ms.map;
		bcap = (size_t)req->size;
	} else {
		bcap = (size_t)net->frame_max + FRAME_HDR_LEN + SERVER_SPOOL_WRITE;
		if ((b = buf = malloc(bcap)) == NULL) {
			server_error(c, "internal", "push", "the gateway is out of memory; retry later");
			goto out;
		}
	}
	deadline = server_deadline(net->read_timeout);
	while (got < req->size) {
		size_t n, want;
		const unsigned char *payload;

		for (;;) {
			/* The header is parsed under its own small cap: nothing larger before it is checked. */
			/* Later frames are records (or the trailer): the batch reader refuses anything larger anyway. */
			size_t fcap = frames == 0 ? BATCH_HEADER_MAX :
			    net->frame_max < BATCH_RECORD_MAX ? net->frame_max : BATCH_RECORD_MAX;
			size_t used;

			if (off >= have)
				break;
			/* No message: a frame cut by the end of a read is the common case, not an error. */
			r = frame_parse(b + off, have - off, fcap, &payload, &len, &used, NULL);
			if (r == CG_ERR_INCOMPLETE)
				break;
			if (r != 0) {
				if (r == CG_ERR_LIMIT) {
					size_t fl = ((size_t)b[off] << 24) | ((size_t)b[off + 1] << 16) |
					    ((size_t)b[off + 2] << 8) | b[off + 3];

					snprintf(msg, sizeof(msg), "frame of %zu bytes is over the limit of %zu bytes",
					    fl, fcap);
					server_error(c, "limit", "push", msg);
					server_refused(c, "push", msg, NULL);
				} else {
					snprintf(msg, sizeof(msg), "malformed frame at offset %llu",
					    (unsigned long long)(got + off));
					server_error(c, "malformed", "push", msg);
					server_refused(c, "push", msg, NULL);
				}
				goto out;
			}
			if (frames == 0) {
				/* A partner pushes its own batches only: checked before anything else is read. */
				if ((hdr = crossgate__batch_header__unpack(NULL, len, payload)) == NULL) {
					server_error(c, "malformed", "push", "the first frame is not a batch header");
					server_refused(c, "push", "the first frame is not a batch header", NULL);
					goto out;
				}
				if (strcmp(hdr->partner_id, c->pr->partner) != 0) {
					snprintf(msg, sizeof(msg), "principal '%s' (partner '%s') may not push a batch "
					    "of partner '%s'", c->pr->name, c->pr->partner,
					    server_name_or(hdr->partner_id));
					server_error(c, "refused", "push", msg);
					server_refused(c, "push", msg, NULL);
					goto out;
				}
			}
			frames++;
			off += used;
			progress = 1;
		}
		/*
		 * Renewed once per SERVER_PUSH_RENEW bytes of whole frames, not per
		 * frame: a client trickling tiny frames would otherwise hold its
		 * spool (and the memory budget) for as long as it liked.  A clock
		 * read per record would also show.
		 */
		if (progress && got + off - renewed_at >= SERVER_PUSH_RENEW) {
			deadline = server_deadline(net->read_timeout);
			renewed_at = got + off;
		}
		progress = 0;
		/* b[0, off) holds checked frames: written once enough gathered, or at the end. */
		if (off > 0 && ms.map != NULL) {
			b += off;
			bcap -= off;
			got += off;
			have -= off;
			off = 0;
		} else if (off > 0 && (got + off >= req->size || bcap - have < SERVER_SPOOL_WRITE)) {
			if (fwrite(b, 1, off, f) != off) {
				server_error(c, "internal", "push", "the gateway cannot spool the batch; retry later");
				server_slog(s, "error", "spool-failed", "conn", json_integer((json_int_t)c->id), "reason",
				    server_slog_str(strerror(errno)), NULL);
				goto out;
			}
			got += off;
			have -= off;
			memmove(b, b + off, have);
			off = 0;
		}
		if (got >= req->size)
			break;
		want = bcap - have;
		if (want > req->size - got - have)
			want = (size_t)(req->size - got - have);
		if (want == 0) {
			/* the announced size ends inside a frame */
			snprintf(msg, sizeof(msg), "batch frames run past the announced %llu bytes",
			    (unsigned long long)req->size);
			server_error(c, "malformed", "push", msg);
			server_refused(c, "push", msg, NULL);
			goto out;
		}
		if (ms.map != NULL) {
			if (server_spool_populate(&ms, (size_t)req->size, (size_t)got + have + 1) != 0) {
				server_error(c, "internal", "push", "the gateway is out of memory; retry later");
				server_slog(s, "warn", "push-aborted", "conn", json_integer((json_int_t)c->id), "principal",
				    server_slog_str(c->pr->name), "reason", server_slog_str("spool memory"), NULL);
				goto out;
			}
			if (want > ms.made - (size_t)got - have)
				want = ms.made - (size_t)got - have;
		}
		r = tls_read_some(c->tc, b + have, want, deadline, &n, &err);
		if (r != 0) {
			if (tls_timed_out(c->tc))
				server_error(c, "timeout", "push", "read timed out");
			server_slog(s, "warn", "push-aborted", "conn", json_integer((json_int_t)c->id), "principal",
			    server_slog_str(c->pr->name), "received", json_integer((json_int_t)(got + have)), "reason",
			    server_slog_str(err.msg), NULL);
			goto out;
		}
		have += n;
	}
	/* Kept open through the ingest: a memory spool lives as long as its descriptor. */
	{
		struct stat sb;

		/* the batch reader reads to the end of the file: it must end exactly where the push did */
		if (fflush(f) != 0 || fstat(fileno(f), &sb) != 0 || (uint64_t)sb.st_size != req->size) {
			server_error(c, "internal", "push", "the gateway cannot spool the batch; retry later");
			goto out;
		}
	}
	t1 = tls_now_us();

	keys.enc = s->cfg.enc;
	keys.storage = s->cfg.storage;
	keys.threads = 0;   /* one per CPU */
	cg_err_clear(&err);
	pthread_mutex_lock(&s->db_mu);
	if (ms.f != NULL) {
		/* a descriptor of its own (sharing the offset, hence the rewind; the spool is rewound for reuse anyway) */
		int dfd = dup(fileno(ms.f));
		FILE *rf = dfd >= 0 ? fdopen(dfd, "rb") : NULL;

		if (rf != NULL && fseeko(rf, 0, SEEK_SET) != 0) {
			fclose(rf);
			rf = NULL;
			dfd = -1;
		}
		if (rf == NULL) {
			if (dfd >= 0)
				close(dfd);
			r = cg_err_set(&err, CG_ERR_IO, "cannot read the memory spool: %s", strerror(errno));
		} else
			r = ingest_batch_stream(s->st, s->au, s->pol, &keys, rf, path, &res, &err);
	} else
		r = ingest_batch_file(s->st, s->au, s->pol, &keys, path, &res, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		server_scrub(err.msg, sizeof(err.msg), path, "pushed batch");
		pthread_mutex_lock(&s->mu);
		s->n_rejected++;
		pthread_mutex_unlock(&s->mu);
		/* ingest logged the rejection itself; the store or the disk failing is ours, not the batch's */
		server_error(c, r == CG_ERR_DB || r == CG_ERR_NOMEM || r == CG_ERR_IO ? "internal" : "rejected",
		    "push", err.msg);
		server_slog(s, "warn", "push-rejected", "conn", json_integer((json_int_t)c->id), "principal",
		    server_slog_str(c->pr->name), "reason", server_slog_str(err.msg), NULL);
		goto out;
	}
	pr.status = res.duplicate ? CROSSGATE__PUSH_STATUS__PUSH_STATUS_DUPLICATE :
	    CROSSGATE__PUSH_STATUS__PUSH_STATUS_COMMITTED;
	pr.records = res.records;
	pr.batch_id.data = res.batch_id;
	pr.batch_id.len = res.duplicate && sodium_is_zero(res.batch_id, 16) ? 0 : 16;
	pr.digest.data = res.digest;
	pr.digest.len = 32;
	pr.partner = res.partner;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_PUSH;
	resp.push = &pr;
	pthread_mutex_lock(&s->mu);
	if (res.duplicate)
		s->n_duplicates++;
	else
		s->n_pushes++;
	pthread_mutex_unlock(&s->mu);
	if (server_send(c, &resp.base, &err) != 0) {
		/* Committed but unacknowledged: the client's retry will be answered DUPLICATE. */
		server_slog(s, "warn", "ack-failed", "conn", json_integer((json_int_t)c->id), "reason", server_slog_str(err.msg),
		    NULL);
		goto out;
	}
	t2 = tls_now_us();
	/* _us too: a receive phase of tens of milliseconds needs finer steps for the bench (bench/bench_net.c) */
	server_slog(s, "info", "push", "conn", json_integer((json_int_t)c->id), "principal", server_slog_str(c->pr->name),
	    "partner", server_slog_str(res.partner), "status", server_slog_str(res.duplicate ? "duplicate" : "committed"),
	    "records", json_integer((json_int_t)res.records), "bytes", json_integer((json_int_t)req->size),
	    "receive_ms", json_integer((json_int_t)((t1 - t0) / 1000)), "commit_ms",
	    json_integer((json_int_t)((t2 - t1) / 1000)), "receive_us", json_integer((json_int_t)(t1 - t0)),
	    "commit_us", json_integer((json_int_t)(t2 - t1)), NULL);
	keep = 1;
out:
	if (hdr != NULL)
		crossgate__batch_header__free_unpacked(hdr, NULL);
	free(buf);
	if (ms.f != NULL)
		server_spool_mem_close(s, &ms);
	else {
		if (f != NULL)
			fclose(f);
		if (path[0] != '\0')
			unlink(path);
	}
	return keep;
}


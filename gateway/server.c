/* server.c - see server.h */
#include "gateway/server.h"
#include "gateway/admit.h"
#include "base/escape.h"
#include "gateway/erase.h"
#include "gateway/stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/memfd.h>
#include <sodium.h>

#include "net/tls.h"
#include "audit/audit.h"
#include "audit/consistency.h"
#include "gateway/export.h"
#include "gateway/model.h"
#include "gateway/query.h"
#include "gateway/ingest.h"
#include "store/store.h"
#include "proto/batch.h"
#include "proto/frame.h"
#include "net/rpc.h"

/* Spool writes gather this many bytes of checked frames (one system call each). */
#define SERVER_SPOOL_WRITE (512 * 1024)
/*
 * Batches up to SERVER_MEM_SPOOL_ONE bytes are spooled to anonymous memory
 * (memfd), while all such spools together stay under SERVER_MEM_SPOOL_ALL;
 * larger ones go to the spool directory.  Memory spares the file system's
 * write path for the common case, and a crash leaves nothing behind.
 */
#define SERVER_MEM_SPOOL_ONE (256ull << 20)
#define SERVER_MEM_SPOOL_ALL (512ull << 20)
/*
 * A memory spool is mapped and TLS records are decrypted straight into it (no
 * copy through a buffer, no write per piece); its pages are made this far
 * ahead of the reads, so memory follows the bytes that arrived rather than
 * the size announced.
 */
#define SERVER_PUSH_RENEW (1024u * 1024)   /* bytes of frames that renew a push's read deadline */
#define SERVER_MAP_STEP (2u << 20)
/*
 * A finished memory spool up to this size is kept, pages and all, for the
 * next push (one spare, counted against SERVER_MEM_SPOOL_ALL while it waits):
 * making and zeroing fresh pages costs a push about as much as decrypting it.
 */
#define SERVER_MEM_SPARE_MAX (64ull << 20)

/* A push spooled to memory: a memfd, its reservation against SERVER_MEM_SPOOL_ALL, perhaps its mapping. */
struct server_memspool {
	FILE *f;
	uint64_t reserved;
	unsigned char *map;
	size_t map_len;
	size_t made;                         /* its pages exist up to here (a multiple of the page size) */
};

/* One connection slot: its socket, and whether a request is in flight (then shutdown leaves it be). */
struct server_slot {
	int used;
	int fd;
	int busy;
};

struct server {
	struct server_config cfg;
	const struct policy *pol;
	SSL_CTX *ctx;
	int lfd;
	int port;
	int stop_pipe[2];
	volatile sig_atomic_t stop_requested;
	char listen_addr[TLS_HOST_MAX + 16];

	pthread_mutex_t db_mu;               /* the store and the audit log: one SQLite writer */
	struct store *st;
	struct audit *au;

	pthread_mutex_t mu;                  /* everything below */
	pthread_cond_t idle_cv;
	int stopping;
	unsigned active;
	uint64_t next_conn;
	struct server_slot *slots;
	uint64_t n_pushes, n_duplicates, n_rejected, n_refused, n_exports, n_fetches, n_conns, n_dropped;
	struct admit *adm;                   /* pre-auth admission, per-source penalties, refusal log limit */
	uint64_t n_dropped_by[ADMIT_PENALTY + 1];   /* n_dropped by admit verdict */
	uint64_t mem_spooled;                /* bytes reserved by memory spools, the spare's included */
	struct server_memspool spare;        /* a memory spool kept for the next push (f NULL: none) */

	pthread_mutex_t log_mu;
	FILE *log;
};

struct server_conn {
	struct server *s;
	int fd;
	size_t slot;
	uint64_t id;
	struct tls_conn *tc;
	struct admit_source src;
	char peer[ADMIT_ADDR_MAX];           /* "ADDR:PORT", from accept() */
	int authed;                          /* counted as authenticated by s->adm */
	int64_t preauth_deadline;            /* handshake, and a principal-less connection's first request */
	const struct policy_principal *pr;
	char identity[PKI_IDENTITY_MAX + 1];
	unsigned char *buf;
	size_t cap;
	int linger;                          /* an Error went out: drain before closing */
};

/* ---- logs ---- */

static void
server_time(char out[96])
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/*
 * A string for a log line: escaped (base/escape.h), so that a reason quoting
 * a peer's partner_id or field name, or a certificate's name, can neither
 * drive a terminal that shows the log nor break the line (and is valid
 * UTF-8, which jansson requires).
 */
static json_t *
slog_str(const char *s)
{
	char *e = escape_text_dup(s != NULL ? s : "");
	json_t *j = e != NULL ? json_string(e) : NULL;

	free(e);
	return j;
}

/*
 * One JSON object per line: "time", "level", "event", then key/value pairs
 * (const char *key, json_t *value (stolen), ... NULL).  Values are counts,
 * names and reasons; callers never pass a key, token, identifier or value.
 */
static void
slog(struct server *s, const char *level, const char *event, ...)
{
	json_t *o = json_object();
	const char *k;
	char ts[96], *line;
	va_list ap;

	server_time(ts);
	if (o != NULL) {
		json_object_set_new(o, "time", json_string(ts));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "event", json_string(event));
	}
	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		json_t *v = va_arg(ap, json_t *);

		if (o != NULL && v != NULL)
			json_object_set_new(o, k, v);
		else
			json_decref(v);
	}
	va_end(ap);
	if (o == NULL || (line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL) {
		json_decref(o);
		return;
	}
	pthread_mutex_lock(&s->log_mu);
	fprintf(s->log, "%s\n", line);
	fflush(s->log);
	pthread_mutex_unlock(&s->log_mu);
	free(line);
	json_decref(o);
}

/* A string that came from the network, safe for a log line or a message. */
static const char *
server_name_or(const char *s)
{
	return s != NULL && rpc_name_ok(s) ? s : "?";
}

/* ---- audit events (callers hold nothing; these take db_mu) ---- */

static void
server_audit(struct server *s, Crossgate__AuditEvent *ev)
{
	struct cg_err err;

	pthread_mutex_lock(&s->db_mu);
	if (audit_log(s->au, ev, &err) != 0)
		slog(s, "error", "audit-failed", "action", slog_str(ev->action), "reason", slog_str(err.msg),
		    NULL);
	pthread_mutex_unlock(&s->db_mu);
}

static void
server_event_init(struct server *s, Crossgate__AuditEvent *ev, const char *actor, const char *action,
    const char *outcome)
{
	crossgate__audit_event__init(ev);
	ev->actor = (char *)actor;
	ev->action = (char *)action;
	ev->outcome = (char *)outcome;
	ev->policy_hash.data = (uint8_t *)s->pol->hash;
	ev->policy_hash.len = sizeof(s->pol->hash);
}

/*
 * A refusal: logged, and an audit event (action "refused", the operation in
 * counts-free `reason`).  Unauthenticated ones are rate-limited, log line and
 * audit event alike, together with the refusals at accept() (admit.h).
 */
static void
server_refused(struct server_conn *c, const char *op, const char *reason, const char *purpose)
{
	struct server *s = c->s;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	char full[CG_ERR_MSG_MAX + 64];
	const char *actor = c->pr != NULL ? c->pr->name : "unauthenticated";
	uint64_t suppressed = 0;
	int log_it = 1;

	pthread_mutex_lock(&s->mu);
	s->n_refused++;
	if (c->pr == NULL)
		log_it = admit_log_ok(s->adm, tls_now_ms(), &suppressed);
	pthread_mutex_unlock(&s->mu);
	if (!log_it)
		return;
	slog(s, "warn", "refused", "conn", json_integer((json_int_t)c->id), "peer", slog_str(c->peer),
	    "principal", slog_str(actor), "op", slog_str(op), "reason", slog_str(reason), "suppressed",
	    json_integer((json_int_t)suppressed), NULL);
	snprintf(full, sizeof(full), "%s: %s", op, reason);
	server_event_init(s, &ev, actor, "refused", "rejected");
	ev.reason = full;
	if (purpose != NULL)
		ev.purpose = (char *)purpose;
	if (c->pr != NULL && c->pr->partner != NULL)
		ev.partner_id = c->pr->partner;
	if (suppressed > 0) {
		crossgate__audit_event__counts_entry__init(&ce);
		ce.key = (char *)"suppressed";
		ce.value = suppressed;
		ev.counts = &cep;
		ev.n_counts = 1;
	}
	server_audit(s, &ev);
}

/* ---- helpers ---- */

static int64_t
server_deadline(uint32_t seconds)
{
	return tls_now_ms() + (int64_t)seconds * 1000;
}

/* Answer with an Error (best effort: the peer may be gone). */
static void
server_error(struct server_conn *c, const char *code, const char *op, const char *msg)
{
	struct cg_err err;

	c->linger = 1;
	if (c->tc != NULL && rpc_send_error(c->tc, code, op, msg, 0, server_deadline(c->s->pol->net.read_timeout),
	    &err) != 0)
		slog(c->s, "info", "send-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    slog_str(err.msg), NULL);
}

/* Replace a spool path inside a message: the peer gets no server paths. */
static void
server_scrub(char *msg, size_t size, const char *path, const char *with)
{
	char out[CG_ERR_MSG_MAX];
	size_t plen = strlen(path), o = 0;
	const char *p = msg, *q;

	while ((q = strstr(p, path)) != NULL && o < sizeof(out) - 1) {
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s%s", (int)(q - p), p, with);
		p = q + plen;
	}
	if (o >= sizeof(out) - 1)
		o = sizeof(out) - 1;
	snprintf(out + o, sizeof(out) - o, "%s", p);
	snprintf(msg, size, "%s", out);
}

static int
server_spool_open(struct server *s, const char *kind, uint64_t id, char path[1200], FILE **out, struct cg_err *err)
{
	unsigned char rnd[8];
	char hex[17];
	int fd;

	*out = NULL;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(path, 1200, "%s/%s-%llu-%s.part", s->cfg.spool_dir, kind, (unsigned long long)id, hex);
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return cg_err_set(err, CG_ERR_IO, "cannot create a spool file: %s", strerror(errno));
	if ((*out = fdopen(fd, "w+")) == NULL) {
		close(fd);
		unlink(path);
		return cg_err_set(err, CG_ERR_IO, "cannot open a spool file: %s", strerror(errno));
	}
	return 0;
}

/*
 * A push spool in memory if the batch is small enough and the budget allows:
 * the memfd behind f, `size` bytes long, its reservation (to give back) and,
 * once server_spool_map() worked, its mapping.  path is only a name for
 * messages: ingest reads a duplicate of the descriptor (no /proc needed, as
 * in a chroot).  ms->f is NULL otherwise.
 */
static void
server_spool_mem(struct server *s, uint64_t size, char path[1200], struct server_memspool *ms)
{
	struct server_memspool spare;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int fd;

	memset(ms, 0, sizeof(*ms));
	if (size > SERVER_MEM_SPOOL_ONE)
		return;
	pthread_mutex_lock(&s->mu);
	spare = s->spare;
	memset(&s->spare, 0, sizeof(s->spare));
	s->mem_spooled -= spare.reserved;
	if (s->mem_spooled + size <= SERVER_MEM_SPOOL_ALL) {
		s->mem_spooled += size;
		ms->reserved = size;
	}
	pthread_mutex_unlock(&s->mu);
	/*
	 * The spare is cut to this batch's size at once (beyond it, its pages go:
	 * the budget counts `size`) and rewound for a spool that is written to.
	 */
	if (spare.f != NULL && ms->reserved > 0 && ftruncate(fileno(spare.f), (off_t)size) == 0 &&
	    fseek(spare.f, 0, SEEK_SET) == 0) {
		ms->f = spare.f;
		if (spare.map != NULL && spare.map_len >= size) {
			ms->map = spare.map;
			ms->map_len = spare.map_len;
			ms->made = (spare.made < size ? spare.made : (size_t)size) / page * page;
			spare.map = NULL;
		}
		spare.f = NULL;
	}
	if (spare.map != NULL)
		munmap(spare.map, spare.map_len);
	if (spare.f != NULL)
		fclose(spare.f);
	if (ms->f == NULL && ms->reserved > 0 &&
	    (fd = (int)syscall(SYS_memfd_create, "crossgate-push", MFD_CLOEXEC)) >= 0) {
		if (ftruncate(fd, (off_t)size) != 0 || (ms->f = fdopen(fd, "w+")) == NULL)
			close(fd);
	}
	if (ms->f != NULL) {
		snprintf(path, 1200, "memory spool");   /* a name for messages: ingest reads the descriptor itself */
		return;
	}
	path[0] = '\0';
	pthread_mutex_lock(&s->mu);
	s->mem_spooled -= ms->reserved;
	pthread_mutex_unlock(&s->mu);
	ms->reserved = 0;
}

/*
 * Close a memory spool: kept as the spare, mapping and all, if there is none
 * and it is small enough; else unmapped, closed and its reservation given
 * back.  What the spare holds (a batch as it came over the wire: signed, its
 * records sealed) is overwritten or cut off by the next push.
 */
static void
server_spool_mem_close(struct server *s, struct server_memspool *ms)
{
	if (ms->f == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	/*
	 * Only a mapped spool is kept: one written through stdio may hold
	 * unflushed bytes of an aborted push, which the next push's rewind
	 * would write past its end.
	 */
	if (s->spare.f == NULL && !s->stopping && ms->reserved <= SERVER_MEM_SPARE_MAX && ms->map != NULL) {
		s->spare = *ms;
		memset(ms, 0, sizeof(*ms));
	}
	s->mem_spooled -= ms->reserved;
	pthread_mutex_unlock(&s->mu);
	if (ms->map != NULL)
		munmap(ms->map, ms->map_len);
	if (ms->f != NULL)
		fclose(ms->f);
	memset(ms, 0, sizeof(*ms));
}

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

static int
server_write_frame(FILE *f, const unsigned char *p, size_t n)
{
	unsigned char hdr[FRAME_HDR_LEN];

	frame_header(n, hdr);
	return fwrite(hdr, 1, sizeof(hdr), f) == sizeof(hdr) && (n == 0 || fwrite(p, 1, n, f) == n) ? 0 : -1;
}

static int
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
		slog(s, "error", "spool-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    slog_str(err.msg), NULL);
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
				slog(s, "error", "spool-failed", "conn", json_integer((json_int_t)c->id), "reason",
				    slog_str(strerror(errno)), NULL);
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
				slog(s, "warn", "push-aborted", "conn", json_integer((json_int_t)c->id), "principal",
				    slog_str(c->pr->name), "reason", slog_str("spool memory"), NULL);
				goto out;
			}
			if (want > ms.made - (size_t)got - have)
				want = ms.made - (size_t)got - have;
		}
		r = tls_read_some(c->tc, b + have, want, deadline, &n, &err);
		if (r != 0) {
			if (tls_timed_out(c->tc))
				server_error(c, "timeout", "push", "read timed out");
			slog(s, "warn", "push-aborted", "conn", json_integer((json_int_t)c->id), "principal",
			    slog_str(c->pr->name), "received", json_integer((json_int_t)(got + have)), "reason",
			    slog_str(err.msg), NULL);
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
		slog(s, "warn", "push-rejected", "conn", json_integer((json_int_t)c->id), "principal",
		    slog_str(c->pr->name), "reason", slog_str(err.msg), NULL);
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
	if (rpc_write_msg(c->tc, &resp.base, server_deadline(net->read_timeout), &err) != 0) {
		/* Committed but unacknowledged: the client's retry will be answered DUPLICATE. */
		slog(s, "warn", "ack-failed", "conn", json_integer((json_int_t)c->id), "reason", slog_str(err.msg),
		    NULL);
		goto out;
	}
	t2 = tls_now_us();
	/* _us too: a receive phase of tens of milliseconds needs finer steps for the bench (bench/bench_net.c) */
	slog(s, "info", "push", "conn", json_integer((json_int_t)c->id), "principal", slog_str(c->pr->name),
	    "partner", slog_str(res.partner), "status", slog_str(res.duplicate ? "duplicate" : "committed"),
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

/* ---- streaming a spool file ---- */

/* Send `size` bytes of f as Chunk responses. */
static int
server_send_chunks(struct server_conn *c, FILE *f, uint64_t size, struct cg_err *err)
{
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__Chunk ch = CROSSGATE__CHUNK__INIT;
	unsigned char *b;
	uint64_t sent = 0;
	size_t n;
	int r = 0;

	if ((b = malloc(RPC_CHUNK_MAX)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	resp.result_case = CROSSGATE__RESPONSE__RESULT_CHUNK;
	resp.chunk = &ch;
	do {
		n = fread(b, 1, RPC_CHUNK_MAX, f);
		if (n == 0 && sent < size) {
			r = cg_err_set(err, CG_ERR_IO, "spool file shorter than expected");
			break;
		}
		sent += n;
		ch.data.data = b;
		ch.data.len = n;
		ch.last = sent >= size;
		if ((r = rpc_write_msg(c->tc, &resp.base, server_deadline(c->s->pol->net.read_timeout), err)) != 0)
			break;
	} while (sent < size);
	sodium_memzero(b, RPC_CHUNK_MAX);    /* an answer's rows: released statistics or row exports */
	free(b);
	return r;
}

/* ---- exports and queries ---- */

/*
 * A connection of its own for a long read (an export, a query): in WAL mode
 * its reads never hold up the commits of pushes on the shared connection,
 * and its few writes (the charge, the audit event) take SQLite's write lock
 * briefly like any other process's.  The audit log reloads what the other
 * connection appended (audit.h).
 */
static int
server_reader_open(struct server *s, struct store **st, struct audit **a, struct cg_err *err)
{
	int r;

	*st = NULL;
	*a = NULL;
	if ((r = store_open(s->cfg.db_path, 0, st, err)) != 0)
		return r;
	/* a big push commits in one transaction: wait for it rather than fail the export */
	sqlite3_busy_timeout(store_db(*st), 120000);
	if ((r = audit_open(*st, s->cfg.sign, a, err)) != 0) {
		store_close(*st);
		*st = NULL;
	}
	return r;
}

/* A small file (an export's provenance) into a NUL-terminated malloc'd string. */
static int
server_slurp(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*out = NULL;
	if (f == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1 << 20 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	buf[n] = '\0';
	fclose(f);
	*out = buf;
	return 0;
}

/*
 * An export or a query: run it on a connection of its own into a spool file
 * and its .meta.json, then send the head message (whose `size` and
 * `meta_json` are filled here, the rest by run()) and the file as chunks.
 */
typedef int (*server_answer_fn)(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err);

static int
server_answer(struct server_conn *c, const char *op, server_answer_fn run, void *ctx, Crossgate__Response *resp,
    uint64_t *size, char **meta_json)
{
	struct server *s = c->s;
	struct store *rst = NULL;
	struct audit *rau = NULL;
	struct cg_err err;
	struct stat sb;
	char path[1200] = "", meta_path[1300], *meta = NULL;
	FILE *f = NULL;
	int r, keep = 0;

	if (server_spool_open(s, op, c->id, path, &f, &err) != 0) {
		server_error(c, "internal", op, "the gateway cannot write the answer; retry later");
		return 0;
	}
	fclose(f);
	f = NULL;
	cg_err_clear(&err);
	if ((r = server_reader_open(s, &rst, &rau, &err)) == 0)
		r = run(rst, rau, path, ctx, &err);
	audit_free(rau);
	store_close(rst);
	if (r != 0) {
		/* refusals by the policy or a budget are audit events already (export.c, query.c, budget.c) */
		server_scrub(err.msg, sizeof(err.msg), path, op);
		server_error(c, r == CG_ERR_POLICY || r == CG_ERR_ARG || r == CG_ERR_LIMIT ? "rejected" : "internal", op,
		    err.msg);
		slog(s, "warn", "answer-failed", "op", slog_str(op), "conn", json_integer((json_int_t)c->id), "reason",
		    slog_str(err.msg), NULL);
		goto out;
	}
	snprintf(meta_path, sizeof(meta_path), "%s.meta.json", path);
	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &sb) != 0 || server_slurp(meta_path, &meta) != 0) {
		server_error(c, "internal", op, "the gateway cannot read the answer; retry later");
		goto out;
	}
	/* unbuffered: the answer is read straight into the chunk buffer, which is wiped, not into stdio's */
	setvbuf(f, NULL, _IONBF, 0);
	*size = (uint64_t)sb.st_size;
	*meta_json = meta;
	if (rpc_write_msg(c->tc, &resp->base, server_deadline(s->pol->net.read_timeout), &err) != 0 ||
	    server_send_chunks(c, f, *size, &err) != 0) {
		slog(s, "warn", "answer-send-failed", "op", slog_str(op), "conn", json_integer((json_int_t)c->id),
		    "reason", slog_str(err.msg), NULL);
		goto out;
	}
	slog(s, "info", op, "conn", json_integer((json_int_t)c->id), "principal", slog_str(c->pr->name),
	    "bytes", json_integer((json_int_t)*size), NULL);
	keep = 1;
out:
	if (f != NULL)
		fclose(f);
	if (path[0] != '\0') {
		unlink(path);
		snprintf(meta_path, sizeof(meta_path), "%s.meta.json", path);
		unlink(meta_path);
	}
	free(meta);
	*meta_json = NULL;
	return keep;
}

/* ---- export ---- */

struct server_export_ctx {
	struct export_opts o;
	Crossgate__ExportResult *er;
};

static int
server_export_run(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err)
{
	struct server_export_ctx *x = ctx;
	struct export_stats es;
	int r;

	x->o.out_path = path;
	if ((r = export_run(st, a, &x->o, &es, err)) != 0)
		return r;
	/* The synthetic rows drawn (a noisy estimate, or what was asked) and the budget: nothing exact about people. */
	x->er->exported = es.rows;
	x->er->charged_nano = es.charged_nano;
	x->er->remaining_nano = es.remaining_nano;
	return 0;
}

static int
server_export(struct server_conn *c, const Crossgate__ExportRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__ExportResult er = CROSSGATE__EXPORT_RESULT__INIT;
	struct server_export_ctx x;
	char msg[CG_ERR_MSG_MAX + 64];
	int keep;

	if (!policy_principal_may_export(s->pol, c->pr, req->purpose)) {
		snprintf(msg, sizeof(msg), "principal '%s' may not export for purpose '%s'", c->pr->name,
		    req->purpose);
		server_error(c, "refused", "export", msg);
		server_refused(c, "export", msg, req->purpose);
		return 0;
	}
	memset(&x, 0, sizeof(x));
	x.o.pol = s->pol;
	x.o.left = req->left[0] ? req->left : NULL;
	x.o.right = req->right[0] ? req->right : NULL;
	x.o.purpose = req->purpose;
	x.o.storage = s->cfg.storage;
	x.o.analyst = c->pr;
	x.o.rows = req->rows;
	x.o.bins = req->bins;
	if (req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &x.o.rho_nano) != 0) {
		server_error(c, "malformed", "export", "export: rho must be a decimal above 0 with at most 9 decimals");
		return 0;
	}
	x.er = &er;
	er.purpose = (char *)req->purpose;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_EXPORT;
	resp.export = &er;
	if ((keep = server_answer(c, "export", server_export_run, &x, &resp, &er.size, &er.meta_json)) != 0) {
		pthread_mutex_lock(&s->mu);
		s->n_exports++;
		pthread_mutex_unlock(&s->mu);
	}
	return keep;
}

/* ---- query ---- */

struct server_query_ctx {
	struct query_spec q;
	struct model_spec m;                 /* a model query (m.kind != 0) instead of q */
	Crossgate__QueryResult *qr;
};

static int
server_query_run(struct store *st, struct audit *a, const char *path, void *ctx, struct cg_err *err)
{
	struct server_query_ctx *x = ctx;
	struct query_stats qs;
	int r;

	if (x->m.kind != 0) {
		struct model_stats ms;

		x->m.out_path = path;
		if ((r = model_run(st, a, &x->m, &ms, err)) != 0)
			return r;
		x->qr->released = ms.released;
		x->qr->charged_nano = ms.charged_nano;
		x->qr->remaining_nano = ms.remaining_nano;
		return 0;
	}
	x->q.out_path = path;
	if ((r = query_run(st, a, &x->q, &qs, err)) != 0)
		return r;
	x->qr->groups = qs.groups;
	x->qr->released = qs.released;
	x->qr->suppressed = qs.suppressed;
	x->qr->charged_nano = qs.charged_nano;
	x->qr->remaining_nano = qs.remaining_nano;
	return 0;
}

/* rpc_request_parse bounds the request's lists by these; the spec's arrays must hold them. */
_Static_assert(RPC_QUERY_GROUP_MAX <= QUERY_GROUP_MAX && RPC_QUERY_METRIC_MAX <= QUERY_METRIC_MAX,
    "a parsed query request must fit a query_spec");

_Static_assert(RPC_QUERY_GROUP_MAX <= MODEL_COLS_MAX, "a parsed model request must fit a model_spec");

/* A model query's spec (gateway/model.h) from the request; rpc.c checked its shape. */
static int
server_model_spec(struct server_conn *c, const Crossgate__QueryRequest *req, struct model_spec *m, struct cg_err *err)
{
	size_t i;

	if (model_kind_parse(req->model, &m->kind, err) != 0)
		return CG_ERR_ARG;
	m->pol = c->s->pol;
	m->purpose = req->purpose;
	m->left = req->left[0] ? req->left : NULL;
	m->right = req->right[0] ? req->right : NULL;
	for (i = 0; i < req->n_model_cols; i++)
		m->cols[m->ncols++] = req->model_cols[i];
	m->y = req->model_y[0] ? req->model_y : NULL;
	m->k = req->model_k;
	m->steps = req->model_steps;
	m->log1p = req->model_log1p;
	m->seed = req->model_seed;
	m->analyst = c->pr;
	m->storage = c->s->cfg.storage;
	if (req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &m->rho_nano) != 0)
		return cg_err_set(err, CG_ERR_ARG, "query: rho must be a decimal above 0 with at most 9 decimals");
	return 0;
}

static int
server_query(struct server_conn *c, const Crossgate__QueryRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__QueryResult qr = CROSSGATE__QUERY_RESULT__INIT;
	struct server_query_ctx x;
	struct query_spec *q = &x.q;
	struct cg_err err;
	size_t i;
	int r = 0;

	memset(&x, 0, sizeof(x));
	cg_err_clear(&err);
	q->pol = s->pol;
	q->purpose = req->purpose;
	q->left = req->left[0] ? req->left : NULL;
	q->right = req->right[0] ? req->right : NULL;
	q->buckets = req->buckets;
	q->analyst = c->pr;
	q->storage = s->cfg.storage;
	for (i = 0; i < req->n_group_by; i++)
		q->group_by[q->ngroup++] = req->group_by[i];
	if (req->model[0] != '\0' && (r = server_model_spec(c, req, &x.m, &err)) != 0) {
		server_error(c, "malformed", "query", err.msg);
		return 0;
	}
	for (i = 0; i < req->n_metrics && r == 0; i++)
		r = query_metric_parse(req->metrics[i], &q->metrics[q->nmetrics++], &err);
	if (r == 0 && ((req->rho[0] && policy_parse_nano(req->rho, strlen(req->rho), POLICY_RHO_MAX, &q->rho_nano) != 0) ||
	    (req->epsilon[0] && policy_parse_nano(req->epsilon, strlen(req->epsilon), QUERY_EPSILON_MAX_NANO,
	    &q->epsilon_nano) != 0) || (req->rho[0] && req->epsilon[0])))
		r = cg_err_set(&err, CG_ERR_ARG, "query: rho or epsilon (one of them) must be a decimal above 0 with at "
		    "most 9 decimals");
	if (r != 0) {
		server_error(c, "malformed", "query", err.msg);
		return 0;
	}
	x.qr = &qr;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_QUERY;
	resp.query = &qr;
	return server_answer(c, "query", server_query_run, &x, &resp, &qr.size, &qr.meta_json);
}

/* ---- audit fetch ---- */

struct server_fetch {
	FILE *f;
	uint64_t count, cosigs;
	int failed;
};

/* One Response frame into the spool file. */
static int
server_fetch_frame(struct server_fetch *sf, Crossgate__Response *resp)
{
	unsigned char stackbuf[8192], *b = stackbuf;
	size_t n;
	int r = 0;

	n = crossgate__response__get_packed_size(resp);
	if (n > sizeof(stackbuf) && (b = malloc(n)) == NULL)
		return sf->failed = 1;
	crossgate__response__pack(resp, b);
	if (server_write_frame(sf->f, b, n) != 0)
		r = sf->failed = 1;
	if (b != stackbuf)
		free(b);
	return r;
}

/* Each event becomes a Response{audit_record} frame in the spool file, sent as is afterwards. */
static int
server_fetch_cb(const struct audit_record *rec, void *arg)
{
	struct server_fetch *sf = arg;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditRecord ar = CROSSGATE__AUDIT_RECORD__INIT;

	ar.seq = rec->seq;
	ar.event.data = (uint8_t *)rec->event;
	ar.event.len = rec->len;
	ar.checkpoint = (char *)(rec->checkpoint != NULL ? rec->checkpoint : "");
	if (rec->erased) {
		/* The payload is gone; its leaf hash keeps the tree, and the erasing event accounts for it. */
		ar.erased = 1;
		ar.leaf_hash.data = (uint8_t *)rec->leaf;
		ar.leaf_hash.len = 32;
		ar.erased_by = rec->erased_by;
	}
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_RECORD;
	resp.audit_record = &ar;
	if (server_fetch_frame(sf, &resp) != 0)
		return 1;
	sf->count++;
	return 0;
}

static int
server_fetch_cosig_cb(const struct audit_cosig *c, void *arg)
{
	struct server_fetch *sf = arg;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditCosignature ac = CROSSGATE__AUDIT_COSIGNATURE__INIT;

	ac.size = c->size;
	ac.witness = (char *)c->witness;
	ac.key_id = c->key_id;
	ac.time = c->time;
	ac.line = (char *)c->line;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGNATURE;
	resp.audit_cosignature = &ac;
	if (server_fetch_frame(sf, &resp) != 0)
		return 1;
	sf->cosigs++;
	return 0;
}

/* A partner's own view: counts of its stored records per purpose. */
static int
server_stats(struct server_conn *c)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__StatsResult sr = CROSSGATE__STATS_RESULT__INIT;
	Crossgate__PurposeCount pc[POLICY_PURPOSES_MAX], *pcp[POLICY_PURPOSES_MAX];
	Crossgate__AuditEvent ev;
	struct stats_partner sp;
	struct cg_err err;
	size_t i;
	int r;

	cg_err_clear(&err);
	server_event_init(s, &ev, c->pr->name, "stats", "ok");
	ev.partner_id = c->pr->partner;
	pthread_mutex_lock(&s->db_mu);
	r = stats_partner_get(s->st, s->pol, c->pr->partner, &sp, &err);
	if (r == 0)
		r = audit_log(s->au, &ev, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		server_error(c, "internal", "stats", "the gateway cannot count the records; retry later");
		slog(s, "error", "stats-failed", "conn", json_integer((json_int_t)c->id), "reason", slog_str(err.msg),
		    NULL);
		return 0;
	}
	sr.partner = c->pr->partner;
	sr.records = sp.records;
	sr.batches = sp.batches;
	for (i = 0; i < s->pol->npurposes; i++) {
		crossgate__purpose_count__init(&pc[i]);
		pc[i].purpose = s->pol->purposes[i];
		pc[i].consenting = sp.with_purpose[i];
		pcp[i] = &pc[i];
	}
	sr.purposes = pcp;
	sr.n_purposes = s->pol->npurposes;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_STATS;
	resp.stats = &sr;
	if (rpc_write_msg(c->tc, &resp.base, server_deadline(s->pol->net.read_timeout), &err) != 0)
		return 0;
	slog(s, "info", "stats", "conn", json_integer((json_int_t)c->id), "principal", slog_str(c->pr->name), NULL);
	return 1;
}

static int
server_fetch(struct server_conn *c, const Crossgate__AuditFetchRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditFetchResult fr = CROSSGATE__AUDIT_FETCH_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	struct server_fetch sf;
	struct cg_err err;
	struct stat sb;
	char path[1200] = "";
	uint64_t size = 0;
	int r, keep = 0;

	memset(&sf, 0, sizeof(sf));
	if ((r = server_spool_open(s, "audit", c->id, path, &sf.f, &err)) != 0) {
		server_error(c, "internal", "audit_fetch", "the gateway cannot copy the audit log; retry later");
		return 0;
	}
	setvbuf(sf.f, NULL, _IOFBF, 1 << 20);
	server_event_init(s, &ev, c->pr->name, "audit-fetch", "ok");
	crossgate__audit_event__counts_entry__init(&ce);
	ce.key = (char *)"from";
	ce.value = req->from;
	ev.counts = &cep;
	ev.n_counts = 1;
	cg_err_clear(&err);
	/* Copied under the lock into the spool file; sent after it is released (a slow auditor stalls nobody). */
	pthread_mutex_lock(&s->db_mu);
	r = audit_log(s->au, &ev, &err);
	if (r == 0)
		r = audit_iter(s->st, req->from, server_fetch_cb, &sf, &err);
	if (r == 0 && req->cosignatures)
		r = audit_cosig_iter(s->st, req->from, server_fetch_cosig_cb, &sf, &err);
	size = audit_size(s->au);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0 || sf.failed || fflush(sf.f) != 0 || fstat(fileno(sf.f), &sb) != 0 || fseek(sf.f, 0, SEEK_SET) != 0) {
		server_error(c, "internal", "audit_fetch", "the gateway cannot copy the audit log; retry later");
		slog(s, "error", "audit-fetch-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    slog_str(r != 0 ? err.msg : "spool write failed"), NULL);
		goto out;
	}
	fr.count = sf.count;
	fr.size = size;
	fr.cosignatures = sf.cosigs;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_FETCH;
	resp.audit_fetch = &fr;
	if (rpc_write_msg(c->tc, &resp.base, server_deadline(s->pol->net.read_timeout), &err) != 0)
		goto sendfail;
	{
		unsigned char *b = malloc(RPC_CHUNK_MAX);
		size_t n;

		if (b == NULL)
			goto out;
		r = 0;
		while (r == 0 && (n = fread(b, 1, RPC_CHUNK_MAX, sf.f)) > 0)
			r = tls_write(c->tc, b, n, server_deadline(s->pol->net.read_timeout), &err);
		free(b);
		if (r != 0)
			goto sendfail;
	}
	pthread_mutex_lock(&s->mu);
	s->n_fetches++;
	pthread_mutex_unlock(&s->mu);
	slog(s, "info", "audit-fetch", "conn", json_integer((json_int_t)c->id), "principal", slog_str(c->pr->name),
	    "from", json_integer((json_int_t)req->from), "events", json_integer((json_int_t)sf.count), "bytes",
	    json_integer((json_int_t)sb.st_size), NULL);
	keep = 1;
	goto out;
sendfail:
	slog(s, "warn", "audit-fetch-send-failed", "conn", json_integer((json_int_t)c->id), "reason",
	    slog_str(err.msg), NULL);
out:
	if (sf.f != NULL)
		fclose(sf.f);
	if (path[0] != '\0')
		unlink(path);
	return keep;
}

/* ---- a consistency proof ---- */

_Static_assert(RPC_PROOF_MAX == CONSISTENCY_FILE_MAX, "a proof file fits the response check");

/* An auditor that kept an old checkpoint asks for the proof that the log extends it (consistency.h). */
static int
server_consistency(struct server_conn *c, const Crossgate__AuditConsistencyRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditConsistencyResult cr = CROSSGATE__AUDIT_CONSISTENCY_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[2], *cep[2] = { &ce[0], &ce[1] };
	struct cg_err err;
	unsigned char *proof = NULL;
	size_t len = 0;
	int r, keep = 0;

	cg_err_clear(&err);
	server_event_init(s, &ev, c->pr->name, "audit-consistency", "ok");
	crossgate__audit_event__counts_entry__init(&ce[0]);
	crossgate__audit_event__counts_entry__init(&ce[1]);
	ce[0].key = (char *)"old_size";
	ce[0].value = req->old_size;
	ce[1].key = (char *)"new_size";
	ce[1].value = req->new_size;
	ev.counts = cep;
	ev.n_counts = 2;
	pthread_mutex_lock(&s->db_mu);
	r = audit_log(s->au, &ev, &err);
	if (r == 0)
		r = consistency_prove(s->st, req->old_size, req->new_size, &proof, &len, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r == CG_ERR_NOTFOUND || r == CG_ERR_ARG) {
		/* Sizes the log has no checkpoint of: the auditor's mistake, said as such. */
		server_error(c, "rejected", "audit_consistency", err.msg);
		goto out;
	}
	if (r != 0) {
		server_error(c, "internal", "audit_consistency", "the gateway cannot make the proof; retry later");
		slog(s, "error", "audit-consistency-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    json_string(err.msg), NULL);
		goto out;
	}
	cr.proof.data = proof;
	cr.proof.len = len;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_CONSISTENCY;
	resp.audit_consistency = &cr;
	if (rpc_write_msg(c->tc, &resp.base, server_deadline(s->pol->net.read_timeout), &err) != 0)
		goto out;
	slog(s, "info", "audit-consistency", "conn", json_integer((json_int_t)c->id), "principal",
	    json_string(c->pr->name), "old_size", json_integer((json_int_t)req->old_size), NULL);
	keep = 1;
out:
	free(proof);
	return keep;
}

/* ---- a witness's cosignature ---- */

static int
server_cosign(struct server_conn *c, const Crossgate__AuditCosignRequest *req)
{
	struct server *s = c->s;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__AuditCosignResult cr = CROSSGATE__AUDIT_COSIGN_RESULT__INIT;
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;
	char name[NOTE_NAME_MAX + 1], msg[CG_ERR_MSG_MAX + 64];
	unsigned char pub[32];
	struct cg_err err;
	int r;

	cg_err_clear(&err);
	if (note_parse_cosig_key(req->witness_key, name, pub, &err) != 0) {
		snprintf(msg, sizeof(msg), "witness key: %s", err.msg);
		server_error(c, "malformed", "audit_cosign", msg);
		server_refused(c, "audit_cosign", msg, NULL);
		return 0;
	}
	server_event_init(s, &ev, c->pr->name, "audit-cosign", "ok");
	ev.reason = name;
	crossgate__audit_event__counts_entry__init(&ce);
	ce.key = (char *)"size";
	ce.value = req->size;
	ev.counts = &cep;
	ev.n_counts = 1;
	/* Checked against the stored checkpoint, stored, and the submission logged: one transaction. */
	pthread_mutex_lock(&s->db_mu);
	if ((r = store_begin(s->st, &err)) == 0) {
		if ((r = audit_cosignature_add(s->st, req->size, name, pub, req->line, &err)) != 0 ||
		    (r = audit_append(s->au, &ev, &err)) != 0 || (r = store_commit(s->st, &err)) != 0) {
			store_rollback(s->st);
			audit_txn_end(s->au, 0);
		} else
			audit_txn_end(s->au, 1);
	}
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0) {
		int theirs = r == CG_ERR_VERIFY || r == CG_ERR_NOTFOUND || r == CG_ERR_FORMAT;

		server_error(c, theirs ? "rejected" : "internal", "audit_cosign", err.msg);
		if (theirs)
			server_refused(c, "audit_cosign", err.msg, NULL);
		else
			slog(s, "error", "cosign-failed", "conn", json_integer((json_int_t)c->id), "reason",
			    slog_str(err.msg), NULL);
		return 0;
	}
	cr.size = req->size;
	cr.witness = name;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGN;
	resp.audit_cosign = &cr;
	if (rpc_write_msg(c->tc, &resp.base, server_deadline(s->pol->net.read_timeout), &err) != 0)
		return 0;
	slog(s, "info", "audit-cosign", "conn", json_integer((json_int_t)c->id), "principal", slog_str(c->pr->name),
	    "size", json_integer((json_int_t)req->size), NULL);
	return 1;
}

/* ---- one connection ---- */

static void
server_set_busy(struct server_conn *c, int busy)
{
	pthread_mutex_lock(&c->s->mu);
	c->s->slots[c->slot].busy = busy;
	pthread_mutex_unlock(&c->s->mu);
}

static int
server_is_stopping(struct server *s)
{
	int v;

	pthread_mutex_lock(&s->mu);
	v = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* One request: 1 to keep the connection for another, 0 to close it. */
static int
server_request(struct server_conn *c)
{
	struct server *s = c->s;
	const struct policy_network *net = &s->pol->net;
	Crossgate__Request *req = NULL;
	struct cg_err err;
	char msg[CG_ERR_MSG_MAX + 128];
	/* a certificate naming no principal is still pre-auth: it gets the handshake's deadline, not idle_timeout */
	int64_t idle = c->pr != NULL ? server_deadline(net->idle_timeout) : c->preauth_deadline;
	const char *op;
	size_t len;
	int r, keep = 0, w;

	/* Idle: wait in slices, so that a shutdown closes this connection promptly. */
	for (;;) {
		if (server_is_stopping(s))
			return 0;
		w = tls_wait_readable(c->tc, 250);
		if (w != 0)
			break;
		if (tls_now_ms() >= idle) {
			slog(s, "info", "idle-timeout", "conn", json_integer((json_int_t)c->id), NULL);
			return 0;
		}
	}
	cg_err_clear(&err);
	/* Requests are small: the pre-authorization cap holds for every request frame. */
	r = rpc_read_frame(c->tc, net->preauth_frame_max, &c->buf, &c->cap, &len, idle, net->read_timeout * 1000u,
	    &err);
	if (r == 0)
		return 0;
	if (r < 0) {
		if (r == CG_ERR_LIMIT) {
			server_error(c, "limit", "frame", err.msg);
			server_refused(c, "frame", err.msg, NULL);
		} else if (tls_timed_out(c->tc)) {
			server_error(c, "timeout", "frame", "request frame not received in time");
			server_refused(c, "frame", "request frame not received in time", NULL);
		} else
			slog(s, "info", "read-failed", "conn", json_integer((json_int_t)c->id), "reason",
			    slog_str(err.msg), NULL);
		return 0;
	}
	if ((r = rpc_request_parse(c->buf, len, &req, &err)) != 0) {
		server_error(c, "malformed", "frame", err.msg);
		server_refused(c, "frame", err.msg, NULL);
		return 0;
	}
	op = rpc_op_name(req);
	if (c->pr == NULL) {
		snprintf(msg, sizeof(msg), "%s refused: the client certificate names no principal of the policy", op);
		server_error(c, "refused", op, msg);
		server_refused(c, op, "the client certificate names no principal of the policy", NULL);
		goto out;
	}
	if ((req->op_case == CROSSGATE__REQUEST__OP_PUSH && c->pr->role != POLICY_PRINCIPAL_PARTNER) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_EXPORT && c->pr->role != POLICY_PRINCIPAL_ANALYST) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_QUERY && c->pr->role != POLICY_PRINCIPAL_ANALYST) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_AUDIT_FETCH && c->pr->role != POLICY_PRINCIPAL_AUDITOR) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_AUDIT_COSIGN && c->pr->role != POLICY_PRINCIPAL_AUDITOR) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_AUDIT_CONSISTENCY && c->pr->role != POLICY_PRINCIPAL_AUDITOR) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_STATS && c->pr->role != POLICY_PRINCIPAL_PARTNER)) {
		snprintf(msg, sizeof(msg), "%s refused: principal '%s' has role %s, which may not %s", op,
		    c->pr->name, policy_role_name(c->pr->role), op);
		server_error(c, "refused", op, msg);
		server_refused(c, op, msg, req->op_case == CROSSGATE__REQUEST__OP_EXPORT ? req->export->purpose : NULL);
		goto out;
	}
	server_set_busy(c, 1);
	switch (req->op_case) {
	case CROSSGATE__REQUEST__OP_PUSH:
		keep = server_push(c, req->push);
		break;
	case CROSSGATE__REQUEST__OP_EXPORT:
		keep = server_export(c, req->export);
		break;
	case CROSSGATE__REQUEST__OP_QUERY:
		keep = server_query(c, req->query);
		break;
	case CROSSGATE__REQUEST__OP_AUDIT_FETCH:
		keep = server_fetch(c, req->audit_fetch);
		break;
	case CROSSGATE__REQUEST__OP_STATS:
		keep = server_stats(c);
		break;
	case CROSSGATE__REQUEST__OP_AUDIT_COSIGN:
		keep = server_cosign(c, req->audit_cosign);
		break;
	case CROSSGATE__REQUEST__OP_AUDIT_CONSISTENCY:
		keep = server_consistency(c, req->audit_consistency);
		break;
	default:
		break;
	}
	server_set_busy(c, 0);
out:
	crossgate__request__free_unpacked(req, NULL);
	return keep;
}

/*
 * After an Error, read and drop what the peer still sends for a moment:
 * closing with unread bytes makes TCP reset the connection, and a reset can
 * destroy the Error before the client reads it.
 */
static void
server_linger(struct server_conn *c)
{
	unsigned char sink[16384];
	int64_t until = tls_now_ms() + 2000;
	size_t got, total = 0;
	struct cg_err err;

	while (total < (64u << 20) && tls_now_ms() < until) {
		if (tls_read(c->tc, sink, sizeof(sink), until, &got, &err) != 0) {
			break;
		}
		total += got;
	}
}

static void *
server_conn_main(void *arg)
{
	struct server_conn *c = arg;
	struct server *s = c->s;
	struct cg_err err;
	char reason[CG_ERR_MSG_MAX + 32];
	int64_t t0 = tls_now_ms();
	int r, fd = c->fd;

	cg_err_clear(&err);
	r = tls_accept(s->ctx, fd, c->preauth_deadline, &c->tc, &err);
	if (r != 0) {
		snprintf(reason, sizeof(reason), "%s", err.msg);
		pthread_mutex_lock(&s->mu);
		admit_penalise(s->adm, &c->src, tls_now_ms() >= c->preauth_deadline ? ADMIT_OFF_TIMEOUT : ADMIT_OFF_FAILED,
		    tls_now_ms());
		pthread_mutex_unlock(&s->mu);
		server_refused(c, "handshake", reason, NULL);
		goto out;
	}
	if (tls_peer_identity(c->tc, c->identity, &err) == 0)
		c->pr = policy_principal_find(s->pol, c->identity);
	pthread_mutex_lock(&s->mu);
	if (c->pr != NULL) {
		admit_authenticated(s->adm, &c->src);
		c->authed = 1;
	} else
		admit_penalise(s->adm, &c->src, ADMIT_OFF_FAILED, tls_now_ms());
	pthread_mutex_unlock(&s->mu);
	slog(s, "info", "connected", "conn", json_integer((json_int_t)c->id), "peer",
	    slog_str(c->peer), "principal", slog_str(c->pr != NULL ? c->pr->name : "none"),
	    "role", slog_str(c->pr != NULL ? policy_role_name(c->pr->role) : "none"), "handshake_ms",
	    json_integer((json_int_t)(tls_now_ms() - t0)), NULL);
	while (server_request(c))
		;
	if (c->linger)
		server_linger(c);
out:
	pthread_mutex_lock(&s->mu);
	/* The slot's fd is closed below: forget it first, so that shutdown never touches a reused fd. */
	s->slots[c->slot].used = 0;
	s->slots[c->slot].fd = -1;
	admit_release(s->adm, &c->src, c->authed);
	pthread_mutex_unlock(&s->mu);
	tls_close(c->tc);       /* closes fd; a failed tls_accept already did */
	free(c->buf);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_cond_broadcast(&s->idle_cv);
	pthread_mutex_unlock(&s->mu);
	free(c);
	return NULL;
}

/* ---- setup ---- */

static int
server_bind(struct server *s, const char *listen_on, struct cg_err *err)
{
	struct addrinfo hints, *res = NULL;
	char host[TLS_HOST_MAX], port[8];
	int fd = -1, one = 1, gai, r;

	if ((r = tls_split_hostport(listen_on, host, port, err)) != 0)
		return r;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0)
		return cg_err_set(err, CG_ERR_IO, "cannot resolve %s: %s", host, gai_strerror(gai));
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot listen on %s: %s", listen_on, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	s->lfd = fd;
	return 0;
}

/*
 * The spool holds pushed batches and answers before they are committed or
 * sent: a directory of this user's, 0700 (created so), not a symlink.  An
 * existing one that others could enter or write is refused with the fix.
 */
static int
server_spool_check(const char *dir, struct cg_err *err)
{
	struct stat sb;
	int fd, r = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return cg_err_set(err, CG_ERR_IO, "cannot create spool directory %s: %s", dir, strerror(errno));
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int e = errno;

		return cg_err_set(err, CG_ERR_IO, "spool directory %s: %s", dir,
		    lstat(dir, &sb) == 0 && S_ISLNK(sb.st_mode) ? "is a symlink" : strerror(e));
	}
	if (fstat(fd, &sb) != 0)
		r = cg_err_set(err, CG_ERR_IO, "spool directory %s: %s", dir, strerror(errno));
	else if (sb.st_uid != geteuid())
		r = cg_err_set(err, CG_ERR_PERM, "spool directory %s is owned by uid %u, not by this user (uid %u)", dir,
		    (unsigned)sb.st_uid, (unsigned)geteuid());
	else if ((sb.st_mode & 077) != 0)
		r = cg_err_set(err, CG_ERR_PERM, "spool directory %s is open to group or others (mode %04o); run: "
		    "chmod 700 %s", dir, (unsigned)(sb.st_mode & 07777), dir);
	close(fd);
	return r;
}

/* Spool files left by a crash belong to batches never acknowledged: remove them. */
static void
server_clean_spool(struct server *s)
{
	DIR *d = opendir(s->cfg.spool_dir);
	struct dirent *de;
	char path[1200];
	size_t n;
	unsigned removed = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 5, ".part") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->cfg.spool_dir, de->d_name);
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		slog(s, "info", "spool-cleaned", "files", json_integer(removed), NULL);
}

int
server_new(const struct server_config *cfg, struct server **out, struct cg_err *err)
{
	struct server *s;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct policy *pol = cfg->pol;
	int r;

	*out = NULL;
	if (pol == NULL || cfg->enc == NULL || cfg->sign == NULL || cfg->storage == NULL || cfg->db_path == NULL ||
	    cfg->spool_dir == NULL || cfg->cert == NULL || cfg->key == NULL) {
		if (cfg->listen_fd >= 0)
			close(cfg->listen_fd);
		return cg_err_set(err, CG_ERR_ARG, "server: missing configuration");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		if (cfg->listen_fd >= 0)
			close(cfg->listen_fd);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	s->cfg = *cfg;
	s->pol = pol;
	s->lfd = cfg->listen_fd;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	s->log = cfg->log != NULL ? cfg->log : stderr;
	pthread_mutex_init(&s->db_mu, NULL);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->log_mu, NULL);
	pthread_cond_init(&s->idle_cv, NULL);
	if (!pol->net.present || pol->net.ca_path == NULL) {
		r = cg_err_set(err, CG_ERR_POLICY, "%s: the policy has no network section (ca, listen)",
		    pol->path != NULL ? pol->path : "policy");
		goto fail;
	}
	if (pol->nprincipals == 0) {
		r = cg_err_set(err, CG_ERR_POLICY, "%s: the policy has no principals: nobody could connect",
		    pol->path != NULL ? pol->path : "policy");
		goto fail;
	}
	if ((s->slots = calloc(pol->net.max_connections, sizeof(*s->slots))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto fail;
	}
	{
		struct admit_config ac = { pol->net.max_connections, pol->net.startups_start, pol->net.startups_rate,
		    pol->net.startups_full, pol->net.per_source_max, pol->net.penalty_max, SERVER_AUDIT_UNAUTH_PER_MIN };

		if ((r = admit_new(&ac, &s->adm, err)) != 0)
			goto fail;
	}
	if ((r = server_spool_check(cfg->spool_dir, err)) != 0)
		goto fail;
	if ((r = tls_server_ctx(pol->net.ca_path, cfg->cert, cfg->key, &s->ctx, err)) != 0)
		goto fail;
	if (s->lfd < 0 && (r = server_bind(s, cfg->listen != NULL ? cfg->listen : pol->net.listen, err)) != 0)
		goto fail;
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) == 0)
		s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
		    ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", cfg->listen != NULL ? cfg->listen :
	    pol->net.listen != NULL ? pol->net.listen : "?");
	if (pipe(s->stop_pipe) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "pipe: %s", strerror(errno));
		goto fail;
	}
	(void)fcntl(s->stop_pipe[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(s->stop_pipe[1], F_SETFL, O_NONBLOCK);
	(void)fcntl(s->stop_pipe[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(s->stop_pipe[1], F_SETFD, FD_CLOEXEC);
	(void)fcntl(s->lfd, F_SETFL, O_NONBLOCK);
	if ((r = store_open(cfg->db_path, STORE_OPEN_CREATE, &s->st, err)) != 0 ||
	    (r = audit_open(s->st, cfg->sign, &s->au, err)) != 0)
		goto fail;
	/* A log that starts here (keys made without keygen --db) names the keys it runs with first. */
	if (audit_size(s->au) == 0 && (r = audit_log_keys(s->au, "keys", cfg->enc, cfg->storage, err)) != 0)
		goto fail;
	if ((r = audit_policy_seen(s->au, cfg->pol->hash, err)) != 0)
		goto fail;
	server_clean_spool(s);
	*out = s;
	return 0;
fail:
	server_free(s);
	return r;
}

int
server_port(const struct server *s)
{
	return s->port;
}

void
server_stop(struct server *s)
{
	int saved = errno;

	if (s == NULL)
		return;
	s->stop_requested = 1;
	if (write(s->stop_pipe[1], "x", 1) < 0) {
		/* the pipe is full: a stop is already pending */
	}
	errno = saved;
}

/* Retention, with every heartbeat: records past their partner's retention_days are erased. */
static void
server_purge(struct server *s)
{
	struct cg_err err;
	uint64_t erased = 0;
	int r;

	cg_err_clear(&err);
	pthread_mutex_lock(&s->db_mu);
	r = erase_purge(s->st, s->au, s->pol, (int64_t)time(NULL), 1, &erased, &err);
	pthread_mutex_unlock(&s->db_mu);
	if (r != 0)
		slog(s, "error", "purge-failed", "reason", slog_str(err.msg), NULL);
	else if (erased > 0)
		slog(s, "info", "purge", "erased", json_integer((json_int_t)erased), NULL);
}

static void
server_heartbeat(struct server *s)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[7], *cep[7];
	const char *names[7] = { "connections", "pushes", "duplicates", "rejected", "refused", "exports", "dropped" };
	uint64_t vals[7], by[ADMIT_PENALTY + 1];
	size_t i;

	pthread_mutex_lock(&s->mu);
	vals[0] = s->n_conns;
	vals[1] = s->n_pushes;
	vals[2] = s->n_duplicates;
	vals[3] = s->n_rejected;
	vals[4] = s->n_refused;
	vals[5] = s->n_exports;
	vals[6] = s->n_dropped;
	memcpy(by, s->n_dropped_by, sizeof(by));
	pthread_mutex_unlock(&s->mu);
	server_event_init(s, &ev, "gateway", "heartbeat", "ok");
	for (i = 0; i < 7; i++) {
		crossgate__audit_event__counts_entry__init(&ce[i]);
		ce[i].key = (char *)names[i];
		ce[i].value = vals[i];
		cep[i] = &ce[i];
	}
	ev.counts = cep;
	ev.n_counts = 7;
	server_audit(s, &ev);
	slog(s, "info", "heartbeat", "connections", json_integer((json_int_t)vals[0]), "pushes",
	    json_integer((json_int_t)vals[1]), "refused", json_integer((json_int_t)vals[4]), "dropped",
	    json_integer((json_int_t)vals[6]), "dropped_busy", json_integer((json_int_t)by[ADMIT_BUSY]),
	    "dropped_startups", json_integer((json_int_t)by[ADMIT_STARTUPS]), "dropped_source",
	    json_integer((json_int_t)by[ADMIT_SOURCE]), "dropped_penalty", json_integer((json_int_t)by[ADMIT_PENALTY]),
	    NULL);
	server_purge(s);
}

static void
server_accept_one(struct server *s)
{
	struct server_conn *c;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct admit_source src;
	char peer[ADMIT_ADDR_MAX];
	enum admit_verdict v;
	pthread_attr_t attr;
	pthread_t th;
	uint64_t suppressed = 0;
	int64_t now;
	size_t i;
	int fd, log_it;

	if ((fd = accept(s->lfd, (struct sockaddr *)&ss, &sl)) < 0)
		return;
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	admit_source_of((struct sockaddr *)&ss, sl, &src, peer);
	now = tls_now_ms();
	pthread_mutex_lock(&s->mu);
	/* admission holds the slot count below max_connections (active == pre-auth + authenticated) */
	if ((v = admit_check(s->adm, &src, now, randombytes_random())) != ADMIT_OK) {
		s->n_dropped++;
		s->n_dropped_by[v]++;
		log_it = admit_log_ok(s->adm, now, &suppressed);
		pthread_mutex_unlock(&s->mu);
		close(fd);
		if (log_it)
			slog(s, "warn", v == ADMIT_BUSY ? "busy" : "dropped", "peer", slog_str(peer), "reason",
			    slog_str(admit_verdict_name(v)), "preauth", json_integer(admit_preauth(s->adm)),
			    "max_connections", json_integer(s->pol->net.max_connections), "suppressed",
			    json_integer((json_int_t)suppressed), NULL);
		return;
	}
	for (i = 0; i < s->pol->net.max_connections && s->slots[i].used; i++)
		;
	if (i == s->pol->net.max_connections || (c = calloc(1, sizeof(*c))) == NULL) {
		admit_release(s->adm, &src, 0);
		pthread_mutex_unlock(&s->mu);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->src = src;
	memcpy(c->peer, peer, sizeof(c->peer));
	c->preauth_deadline = now + (int64_t)s->pol->net.handshake_timeout * 1000;
	c->slot = i;
	c->id = ++s->next_conn;
	s->slots[i].used = 1;
	s->slots[i].fd = fd;
	s->slots[i].busy = 0;
	s->active++;
	s->n_conns++;
	pthread_mutex_unlock(&s->mu);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, server_conn_main, c) != 0) {
		pthread_mutex_lock(&s->mu);
		s->slots[i].used = 0;
		s->active--;
		admit_release(s->adm, &src, 0);
		pthread_mutex_unlock(&s->mu);
		close(fd);
		free(c);
		slog(s, "error", "thread-failed", NULL);
	}
	pthread_attr_destroy(&attr);
}

int
server_run(struct server *s, struct cg_err *err)
{
	struct pollfd p[2];
	int64_t next_beat, now;
	size_t i;
	char buf[64];
	int r = 0, timeout;

	/* Start and stop are in the JSON log; the audit log gets what the gateway does (and heartbeats). */
	{
		struct rlimit core;

		/* read back, so that the log shows what holds: not dumpable, no core, keys in locked pages */
		if (getrlimit(RLIMIT_CORE, &core) != 0)
			core.rlim_cur = RLIM_INFINITY;
		slog(s, "info", "listening", "listen", slog_str(s->listen_addr), "port", json_integer(s->port),
		    "max_connections", json_integer(s->pol->net.max_connections), "max_startups_full",
		    json_integer(s->pol->net.startups_full), "pid", json_integer((json_int_t)getpid()), "dumpable",
		    json_integer(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)), "core_limit",
		    core.rlim_cur == RLIM_INFINITY ? slog_str("unlimited") : json_integer((json_int_t)core.rlim_cur),
		    "tls_key_locked", json_boolean(tls_secure_heap_used()), NULL);
	}
	next_beat = server_deadline(s->pol->net.heartbeat_interval);
	while (!s->stop_requested) {
		now = tls_now_ms();
		if (now >= next_beat) {
			server_heartbeat(s);
			next_beat = now + (int64_t)s->pol->net.heartbeat_interval * 1000;
		}
		timeout = (int)(next_beat - now > 1000 ? 1000 : next_beat - now);
		p[0].fd = s->lfd;
		p[0].events = POLLIN;
		p[1].fd = s->stop_pipe[0];
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR) {
			r = cg_err_set(err, CG_ERR_IO, "poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			server_accept_one(s);
	}
	while (read(s->stop_pipe[0], buf, sizeof(buf)) > 0)
		;
	slog(s, "info", "stopping", "active", json_integer(s->active), NULL);
	/* Stop accepting; close what is idle or still shaking hands; let requests in flight finish. */
	close(s->lfd);
	s->lfd = -1;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	for (i = 0; i < s->pol->net.max_connections; i++)
		if (s->slots[i].used && !s->slots[i].busy && s->slots[i].fd >= 0)
			shutdown(s->slots[i].fd, SHUT_RDWR);
	while (s->active > 0)
		pthread_cond_wait(&s->idle_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	{
		struct cg_err cerr;

		if (store_checkpoint(s->st, &cerr) != 0) {
			slog(s, "error", "checkpoint-failed", "reason", slog_str(cerr.msg), NULL);
			if (r == 0)
				r = cg_err_set(err, cerr.code, "%s", cerr.msg);
		}
	}
	slog(s, "info", "stopped", "connections", json_integer((json_int_t)s->n_conns), "pushes",
	    json_integer((json_int_t)s->n_pushes), "duplicates", json_integer((json_int_t)s->n_duplicates),
	    "refused", json_integer((json_int_t)s->n_refused), NULL);
	return r;
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	audit_free(s->au);
	store_close(s->st);
	if (s->ctx != NULL)
		SSL_CTX_free(s->ctx);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_pipe[0] >= 0)
		close(s->stop_pipe[0]);
	if (s->stop_pipe[1] >= 0)
		close(s->stop_pipe[1]);
	if (s->spare.map != NULL)
		munmap(s->spare.map, s->spare.map_len);
	if (s->spare.f != NULL)
		fclose(s->spare.f);
	free(s->slots);
	admit_free(s->adm);
	pthread_mutex_destroy(&s->db_mu);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->log_mu);
	pthread_cond_destroy(&s->idle_cv);
	free(s);
}

/* server.c - see server.h; logs, audit events, helpers, connections, setup and the accept loop (server_int.h for the split) */
#include "gateway/server.h"
#include "gateway/server_int.h"
#include "gateway/admit.h"
#include "base/escape.h"
#include "gateway/erase.h"
#include "gateway/logline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
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
#include "store/store.h"
#include "net/rpc.h"

/* ---- logs ---- */

/*
 * A string for a log line: escaped (base/escape.h), so that a reason quoting
 * a peer's partner_id or field name, or a certificate's name, can neither
 * drive a terminal that shows the log nor break the line (and is valid
 * UTF-8, which jansson requires).
 */
json_t *
server_slog_str(const char *s)
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
void
server_slog(struct server *s, const char *level, const char *event, ...)
{
	char *line;
	va_list ap;

	va_start(ap, event);
	line = logline_vmake(level, event, ap);
	va_end(ap);
	if (line == NULL)
		return;
	pthread_mutex_lock(&s->log_mu);
	fprintf(s->log, "%s\n", line);
	fflush(s->log);
	pthread_mutex_unlock(&s->log_mu);
	free(line);
}

/* A string that came from the network, safe for a log line or a message. */
const char *
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
		server_slog(s, "error", "audit-failed", "action", server_slog_str(ev->action), "reason", server_slog_str(err.msg),
		    NULL);
	pthread_mutex_unlock(&s->db_mu);
}

void
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
void
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
	server_slog(s, "warn", "refused", "conn", json_integer((json_int_t)c->id), "peer", server_slog_str(c->peer),
	    "principal", server_slog_str(actor), "op", server_slog_str(op), "reason", server_slog_str(reason), "suppressed",
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

int64_t
server_deadline(uint32_t seconds)
{
	return tls_now_ms() + (int64_t)seconds * 1000;
}

int
server_send(struct server_conn *c, const ProtobufCMessage *m, struct cg_err *err)
{
	return rpc_write_msg(c->tc, m, server_deadline(c->s->pol->net.read_timeout), err);
}

/* Answer with an Error (best effort: the peer may be gone). */
void
server_error(struct server_conn *c, const char *code, const char *op, const char *msg)
{
	struct cg_err err;

	c->linger = 1;
	if (c->tc != NULL && rpc_send_error(c->tc, code, op, msg, 0, server_deadline(c->s->pol->net.read_timeout),
	    &err) != 0)
		server_slog(c->s, "info", "send-failed", "conn", json_integer((json_int_t)c->id), "reason",
		    server_slog_str(err.msg), NULL);
}

/* Replace a spool path inside a message: the peer gets no server paths. */
void
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

int
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
void
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
void
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
			server_slog(s, "info", "idle-timeout", "conn", json_integer((json_int_t)c->id), NULL);
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
			server_slog(s, "info", "read-failed", "conn", json_integer((json_int_t)c->id), "reason",
			    server_slog_str(err.msg), NULL);
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
	    (req->op_case == CROSSGATE__REQUEST__OP_STATS && c->pr->role != POLICY_PRINCIPAL_PARTNER) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_AUDIENCE_FETCH && c->pr->role != POLICY_PRINCIPAL_PARTNER) ||
	    (req->op_case == CROSSGATE__REQUEST__OP_AUDIENCE_CREATE && c->pr->role != POLICY_PRINCIPAL_ANALYST)) {
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
	case CROSSGATE__REQUEST__OP_AUDIENCE_FETCH:
		keep = server_audience_fetch(c, req->audience_fetch);
		break;
	case CROSSGATE__REQUEST__OP_AUDIENCE_CREATE:
		keep = server_audience_create(c, req->audience_create);
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
	server_slog(s, "info", "connected", "conn", json_integer((json_int_t)c->id), "peer",
	    server_slog_str(c->peer), "principal", server_slog_str(c->pr != NULL ? c->pr->name : "none"),
	    "role", server_slog_str(c->pr != NULL ? policy_role_name(c->pr->role) : "none"), "handshake_ms",
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

int
server_listen(const char *listen_on, int *out, struct cg_err *err)
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
	*out = fd;
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
		server_slog(s, "info", "spool-cleaned", "files", json_integer(removed), NULL);
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
		    pol->net.startups_full, pol->net.per_source_max, pol->net.penalty_max, SERVER_AUDIT_UNAUTH_PER_MIN,
		    pol->net.trusted_startups, pol->net.ntrusted, { { { 0 }, 0 } } };
		size_t i;

		for (i = 0; i < pol->net.ntrusted && i < ADMIT_TRUSTED_MAX; i++) {
			memcpy(ac.trusted[i].b, pol->net.trusted[i].b, sizeof(ac.trusted[i].b));
			ac.trusted[i].bits = pol->net.trusted[i].bits;
		}
		if ((r = admit_new(&ac, &s->adm, err)) != 0)
			goto fail;
	}
	if ((r = server_spool_check(cfg->spool_dir, err)) != 0)
		goto fail;
	if ((r = tls_server_ctx(pol->net.ca_path, cfg->cert, cfg->key, &s->ctx, err)) != 0)
		goto fail;
	if (s->lfd < 0 && (r = server_listen(cfg->listen != NULL ? cfg->listen : pol->net.listen, &s->lfd, err)) != 0)
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
		server_slog(s, "error", "purge-failed", "reason", server_slog_str(err.msg), NULL);
	else if (erased > 0)
		server_slog(s, "info", "purge", "erased", json_integer((json_int_t)erased), NULL);
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
	server_slog(s, "info", "heartbeat", "connections", json_integer((json_int_t)vals[0]), "pushes",
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
			server_slog(s, "warn", v == ADMIT_BUSY ? "busy" : "dropped", "peer", server_slog_str(peer), "reason",
			    server_slog_str(admit_verdict_name(v)), "preauth", json_integer(admit_preauth(s->adm)),
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
		server_slog(s, "error", "thread-failed", NULL);
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
		server_slog(s, "info", "listening", "listen", server_slog_str(s->listen_addr), "port", json_integer(s->port),
		    "max_connections", json_integer(s->pol->net.max_connections), "max_startups_full",
		    json_integer(s->pol->net.startups_full), "pid", json_integer((json_int_t)getpid()), "dumpable",
		    json_integer(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)), "core_limit",
		    core.rlim_cur == RLIM_INFINITY ? server_slog_str("unlimited") : json_integer((json_int_t)core.rlim_cur),
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
	server_slog(s, "info", "stopping", "active", json_integer(s->active), NULL);
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
			server_slog(s, "error", "checkpoint-failed", "reason", server_slog_str(cerr.msg), NULL);
			if (r == 0)
				r = cg_err_set(err, cerr.code, "%s", cerr.msg);
		}
	}
	server_slog(s, "info", "stopped", "connections", json_integer((json_int_t)s->n_conns), "pushes",
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

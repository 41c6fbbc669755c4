/* server_int.h - internal to gateway/'s server: the server's and a connection's
 * state, the spool limits and the helpers that server.c (accept loop, connections,
 * lifecycle), server_push.c and server_ops.c (the other requests) share.  Not part of
 * the module's interface: only server*.c include it; callers use server.h. */
#ifndef CG_SERVER_INT_H
#define CG_SERVER_INT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>

#include <jansson.h>

#include "gateway/server.h"
#include "gateway/admit.h"
#include "net/tls.h"
#include "proto/crossgate.pb-c.h"

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

/* server.c */
json_t *server_slog_str(const char *s);
void server_slog(struct server *s, const char *level, const char *event, ...);
const char *server_name_or(const char *s);
void server_event_init(struct server *s, Crossgate__AuditEvent *ev, const char *actor, const char *action, const char *outcome);
void server_refused(struct server_conn *c, const char *op, const char *reason, const char *purpose);
int64_t server_deadline(uint32_t seconds);
/* Send one message to c within the policy's read_timeout (rpc_write_msg's 0 or error). */
int server_send(struct server_conn *c, const ProtobufCMessage *m, struct cg_err *err);
void server_error(struct server_conn *c, const char *code, const char *op, const char *msg);
void server_scrub(char *msg, size_t size, const char *path, const char *with);
int server_spool_open(struct server *s, const char *kind, uint64_t id, char path[1200], FILE **out, struct cg_err *err);
void server_spool_mem(struct server *s, uint64_t size, char path[1200], struct server_memspool *ms);
void server_spool_mem_close(struct server *s, struct server_memspool *ms);

/* server_push.c */
int server_write_frame(FILE *f, const unsigned char *p, size_t n);
int server_push(struct server_conn *c, const Crossgate__PushRequest *req);

/* server_ops.c */
int server_export(struct server_conn *c, const Crossgate__ExportRequest *req);
int server_query(struct server_conn *c, const Crossgate__QueryRequest *req);
int server_stats(struct server_conn *c);
int server_audience_fetch(struct server_conn *c, const Crossgate__AudienceFetchRequest *req);
int server_audience_create(struct server_conn *c, const Crossgate__AudienceCreateRequest *req);
int server_fetch(struct server_conn *c, const Crossgate__AuditFetchRequest *req);
int server_consistency(struct server_conn *c, const Crossgate__AuditConsistencyRequest *req);
int server_cosign(struct server_conn *c, const Crossgate__AuditCosignRequest *req);

#endif

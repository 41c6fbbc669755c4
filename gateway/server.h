/*
 * server.h - `crossgate gateway serve`: the gateway as a mutual-TLS server.
 *
 * The network adds authentication, framing and concurrency; the work itself
 * is the file pipeline's: a pushed batch is spooled to a file and handed to
 * ingest_batch_file(), an export is export_run() into a file that is then
 * streamed, an audit fetch is audit_iter().  Protocol: proto/crossgate.proto
 * ("network protocol"), net/rpc.h.
 *
 * Authentication: TLS 1.3 with client certificates of the policy's CA
 * (net/tls.h); the certificate's identity (net/pki.h) must be a
 * principal of the policy, whose role allows exactly one kind of request:
 * partner -> push (of its own partner's batches only), analyst -> export (for
 * its purposes), auditor -> audit fetch.  Every refusal (handshake failures,
 * unknown identities, wrong roles, malformed or oversized frames) is answered
 * with an Error naming the operation when a TLS channel exists, logged, and
 * appended to the audit log as an action "refused" event.  Refusals before
 * authentication, and the connections refused at accept(), are rate-limited
 * in the JSON log and the audit log alike (SERVER_AUDIT_UNAUTH_PER_MIN a
 * minute; the rest are counted in the next one's "suppressed") so that
 * anonymous peers cannot flood either.
 *
 * Concurrency: one thread per connection, at most the policy's
 * max_connections (more are closed at once).  Before authentication a
 * connection is admitted by gateway/admit.h (max_startups, per_source_max,
 * penalties), so that unauthenticated peers cannot take the slots kept for
 * principals; every refusal line names the peer's address.  Connections read and spool
 * concurrently; the store and the audit log (one SQLite writer) are used
 * under one mutex, held only for an ingest commit, an export, or copying
 * the audit log to a spool file: never while waiting on a peer.  Every wait
 * on a peer has a deadline (handshake, read and idle timeouts), so a slow or
 * silent client holds one thread and nothing else.
 *
 * Exactly once: the push answer is sent only after ingest_batch_file() has
 * committed; a batch pushed again is answered DUPLICATE by the same code.  A
 * crash loses at most batches that were never acknowledged, and the spool
 * files they leave are removed at the next start.
 *
 * Shutdown (server_stop, e.g. on SIGTERM): stop accepting, close connections
 * that are idle or still in their handshake, let requests in flight finish,
 * checkpoint the WAL, return 0.
 *
 * Logs: one JSON object per line (time, level, event, and fields such as
 * conn, peer, principal, role, op, records, ms, reason); never a key, a token,
 * an identifier or a feature value.
 */
#ifndef CG_SERVER_H
#define CG_SERVER_H

#include <stdio.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

#define SERVER_AUDIT_UNAUTH_PER_MIN 60

struct server_config {
	const struct policy *pol;            /* with a network section and principals */
	const struct keyfile_key *enc;       /* gateway X25519 secret key (ingest) */
	const struct keyfile_key *sign;      /* gateway Ed25519 secret key (audit log) */
	const struct keyfile_key *storage;   /* gateway storage key */
	const char *db_path;
	const char *spool_dir;               /* created 0700 if missing */
	const char *cert, *key;              /* the server's certificate (chain) and key */
	const char *listen;                  /* HOST:PORT; NULL: the policy's network.listen */
	int listen_fd;                       /* >= 0: a listening socket to use (owned from now on) */
	FILE *log;                           /* JSON lines; NULL: stderr */
};

struct server;   /* owned by the caller of server_new */

/* Bind, load the TLS context, open the store and the audit log, clean the spool. */
int server_new(const struct server_config *cfg, struct server **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
/*
 * A listening socket on HOST:PORT (SO_REUSEADDR, close-on-exec) into *fd, for
 * server_config.listen_fd: a monitor binds once and hands a copy to each
 * worker it starts (gateway/monitor.h), so a restart keeps the port.
 */
int server_listen(const char *listen_on, int *fd, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* The bound TCP port (useful with port 0). */
int server_port(const struct server *s) CG_NONNULL(1);
/* Serve until server_stop(); then shut down as described above. */
int server_run(struct server *s, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* Ask server_run to return; async-signal-safe. */
void server_stop(struct server *s);
void server_free(struct server *s);

#endif

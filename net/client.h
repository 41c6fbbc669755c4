/*
 * client.h - the client side of the gateway protocol (net/rpc.h), shared
 * by every command that talks to a gateway (`agent push`, `query`, `export`,
 * `audience`, `audit fetch`, ...).
 *
 * A client verifies the gateway's certificate against the CA it is given
 * (never the system store) and the host name or address it connects to, and
 * presents its own certificate.  Errors say whether a retry can help:
 * client_retryable() is true for connection failures, timeouts and the
 * server's "unavailable"/"internal"/"timeout" answers, false for refusals,
 * rejections and malformed exchanges.
 */
#ifndef CG_CLIENT_H
#define CG_CLIENT_H

#include <stdint.h>
#include <stdio.h>
#include <openssl/ssl.h>
#include "base/err.h"
#include "net/tls.h"
#include "proto/crossgate.pb-c.h"

#define CLIENT_TIMEOUT_DEFAULT 60       /* seconds: connect + handshake, and each response */

struct client_opts {
	const char *gateway;                /* HOST:PORT */
	const char *ca;                     /* the deployment's CA certificate */
	const char *cert, *key;             /* this principal's certificate and key */
	unsigned timeout_s;                 /* 0: CLIENT_TIMEOUT_DEFAULT */
};

struct client;   /* owned by the caller of client_open; client_close frees */

int client_open(const struct client_opts *o, struct client **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void client_close(struct client *c);

/* Send a request (version is filled in). */
int client_send(struct client *c, Crossgate__Request *req, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
/* Send raw bytes (a batch file's frames). */
int client_send_raw(struct client *c, const void *buf, size_t n, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/*
 * Read the next response.  An Error response becomes a failure: CG_ERR_POLICY
 * for "refused"/"rejected", CG_ERR_LIMIT for "limit", CG_ERR_FORMAT for
 * "malformed", CG_ERR_IO otherwise, with the message "gateway: <op>: <message>
 * (<code>)".  Caller frees *out with crossgate__response__free_unpacked.
 */
int client_recv(struct client *c, Crossgate__Response **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * client_recv, then check the answer is of the kind `expected`: another kind
 * is CG_ERR_FORMAT "gateway: unexpected answer to <what>" (`what` names the
 * request for the user: "a query", "an export").  *out as for client_recv:
 * set only on success, the caller frees it.
 */
int client_recv_expect(struct client *c, Crossgate__Response__ResultCase expected, const char *what,
    Crossgate__Response **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);

/*
 * One request and its first answer: client_open, client_send, then
 * client_recv_expect.  On success *resp is the answer (the caller frees it
 * with crossgate__response__free_unpacked) and, when cp is not NULL, *cp the
 * still open client, for the stream that follows the answer (the caller
 * closes it with client_close); with cp NULL the connection is closed before
 * returning.  On failure *resp (and *cp) stay NULL and nothing is left open;
 * the error is that of the step that failed, as described above: an Error
 * answer keeps its "gateway: <op>: <message> (<code>)" message and its code.
 */
int client_call(const struct client_opts *o, Crossgate__Request *req, Crossgate__Response__ResultCase expected,
    const char *what, struct client **cp, Crossgate__Response **resp, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 4, 6);

/* Whether the last failure of this client (or before one existed: of client_open) may pass on a retry. */
int client_retryable(int code, const struct cg_err *err);

#endif

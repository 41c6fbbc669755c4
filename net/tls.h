/*
 * tls.h - mutual TLS 1.3 connections for the gateway and its clients
 * (OpenSSL 3).
 *
 * Both sides: TLS 1.3 only, the peer's certificate required and verified
 * against the one CA file given (never the system store), no renegotiation,
 * no session resumption (every connection authenticates in full, so an
 * expired or re-issued certificate counts at once).  The client also checks
 * the server's host name or IP address (SSL_set1_host).
 *
 * I/O is non-blocking underneath and every call takes an absolute deadline
 * (tls_now_ms() + timeout): a peer that sends one byte a minute cannot hold a
 * handshake or a read open past its deadline.  Timeouts and I/O failures are
 * CG_ERR_IO; tls_timed_out() says which.  Callers must ignore SIGPIPE.
 */
#ifndef CG_TLS_H
#define CG_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "base/err.h"
#include "net/pki.h"

struct tls_conn;   /* owned by the caller of tls_accept/tls_connect; tls_close frees */

#define TLS_HOST_MAX 256

/* Monotonic milliseconds, and microseconds (for timing phases shorter than a few ms). */
int64_t tls_now_ms(void);
int64_t tls_now_us(void);

/*
 * Contexts (caller frees with SSL_CTX_free).  The key file must be a regular
 * file owned by this user and readable by nobody else; it is opened once and
 * the descriptor read is the one checked.
 */
int tls_server_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);
/* cert and key may both be NULL: a client without a certificate (which every server refuses). */
int tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 4);

/*
 * Server side: the handshake on an accepted socket (made non-blocking here;
 * the connection owns fd from now on, even on failure).  On failure the
 * message says why ("client certificate rejected: certificate has expired",
 * "TLS handshake timed out", "wrong version number", ...).
 */
int tls_accept(SSL_CTX *ctx, int fd, int64_t deadline, struct tls_conn **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 4);

/* Client side: connect to host:port and handshake, checking the server's name (or IP address). */
int tls_connect(SSL_CTX *ctx, const char *host, const char *port, int64_t deadline, struct tls_conn **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 5);

/* The peer certificate's identity (pki_cert_identity); the handshake already verified it. */
int tls_peer_identity(struct tls_conn *c, char out[PKI_IDENTITY_MAX + 1], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Read exactly n bytes.  *got (may be NULL) is how many arrived.  The end of
 * the stream before n bytes is CG_ERR_INCOMPLETE ("connection closed"); with
 * *got == 0 that is a clean end between messages.
 */
int tls_read(struct tls_conn *c, void *buf, size_t n, int64_t deadline, size_t *got, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1);
/* Read at least one and at most n bytes (*got); the end of the stream is CG_ERR_INCOMPLETE. */
int tls_read_some(struct tls_conn *c, void *buf, size_t n, int64_t deadline, size_t *got, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 5);
int tls_write(struct tls_conn *c, const void *buf, size_t n, int64_t deadline, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1);

/* Wait until a byte can be read: 1, 0 on timeout, negative on error. */
int tls_wait_readable(struct tls_conn *c, int timeout_ms) CG_NONNULL(1);
int tls_timed_out(const struct tls_conn *c) CG_NONNULL(1);
/* "ADDR:PORT" of the peer, for logs. */
const char *tls_peer_addr(const struct tls_conn *c) CG_NONNULL(1);

/* Send close_notify (without waiting long), close the socket, free. NULL is a no-op. */
void tls_close(struct tls_conn *c);

/*
 * OpenSSL's secure heap (TLS_SECURE_HEAP bytes, mlock'd, not in core dumps)
 * for private keys loaded afterwards; best effort (a failed mlock leaves the
 * ordinary heap).  tls_secure_heap_used() says whether a key landed there.
 */
#define TLS_SECURE_HEAP (64 * 1024)
void tls_secure_heap_init(void);
int tls_secure_heap_used(void);

/* Split "HOST:PORT" ("[v6]:PORT" too). */
int tls_split_hostport(const char *s, char host[TLS_HOST_MAX], char port[8], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

#endif

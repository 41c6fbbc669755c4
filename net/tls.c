/* tls.c - see tls.h */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <sodium.h>

#include "base/secmem.h"

#define TLS_KEY_FILE_MAX (64 * 1024)

struct tls_conn {
	SSL *ssl;
	int fd;
	int timed_out;
	char peer[INET6_ADDRSTRLEN + 8];
};

int64_t
tls_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
tls_now_ms(void)
{
	return tls_now_us() / 1000;
}

/* The first queued OpenSSL reason ("certificate verify failed", ...), the queue cleared. */
static const char *
tls_reason(char buf[160])
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	buf[0] = '\0';
	if (e != 0) {
		r = ERR_reason_error_string(e);
		snprintf(buf, 160, "%s", r != NULL ? r : "TLS error");
	}
	ERR_clear_error();
	return buf[0] ? buf : "TLS error";
}

static int
tls_ctx_err(struct cg_err *err, const char *what, const char *path)
{
	char buf[160];

	return cg_err_set(err, CG_ERR_FORMAT, "%s %s: %s", what, path, tls_reason(buf));
}

/*
 * The private key, opened once: the descriptor read is the one checked
 * (a regular file of this user, mode 0600 or stricter), so the file cannot
 * be swapped between the check and the read.  Its text goes through secmem
 * and is wiped; the parsed key lives in OpenSSL (its secure heap once
 * tls_secure_heap_init() ran).
 */
static int
tls_key_load(SSL_CTX *ctx, const char *key, struct cg_err *err)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	int fd, r = 0;

	if ((fd = open(key, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return cg_err_set(err, CG_ERR_IO, "cannot open %s: %s", key, strerror(errno));
	if (fstat(fd, &sb) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot stat %s: %s", key, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = cg_err_set(err, CG_ERR_IO, "%s: private key is not a regular file", key);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		r = cg_err_set(err, CG_ERR_PERM, "%s: private key readable by group or others (chmod 600)", key);
		goto out;
	}
	if (sb.st_uid != geteuid()) {
		r = cg_err_set(err, CG_ERR_PERM, "%s: private key owned by uid %u, not by this user (uid %u)", key,
		    (unsigned)sb.st_uid, (unsigned)geteuid());
		goto out;
	}
	/* sodium_init() is idempotent; secmem needs it, and a library caller may not have called it */
	if (sodium_init() < 0 || (buf = secmem_alloc(TLS_KEY_FILE_MAX)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	while (len < TLS_KEY_FILE_MAX && (n = read(fd, buf + len, TLS_KEY_FILE_MAX - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cg_err_set(err, CG_ERR_IO, "cannot read %s: %s", key, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(ctx, pk) != 1)
		r = tls_ctx_err(err, "cannot load key", key);
out:
	EVP_PKEY_free(pk);
	BIO_free(bio);
	secmem_free(buf, TLS_KEY_FILE_MAX);
	close(fd);
	return r;
}

void
tls_secure_heap_init(void)
{
	/* Locked (mlock), excluded from core dumps, guard pages: where OpenSSL keeps private key numbers. */
	if (CRYPTO_secure_malloc_initialized() == 0)
		(void)CRYPTO_secure_malloc_init(TLS_SECURE_HEAP, 32);
}

int
tls_secure_heap_used(void)
{
	return CRYPTO_secure_malloc_initialized() && CRYPTO_secure_used() > 0;
}

static int
tls_ctx_common(SSL_CTX *ctx, const char *ca, const char *cert, const char *key, struct cg_err *err)
{
	int r;

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return tls_ctx_err(err, "cannot require TLS 1.3 for", ca);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Only the policy's CA: never SSL_CTX_set_default_verify_paths(). */
	if (SSL_CTX_load_verify_file(ctx, ca) != 1)
		return tls_ctx_err(err, "cannot load CA file", ca);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	if (cert == NULL)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return tls_ctx_err(err, "cannot load certificate", cert);
	if ((r = tls_key_load(ctx, key, err)) != 0)
		return r;
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_ctx_err(err, "key does not match certificate", cert);
	return 0;
}

int
tls_server_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out, struct cg_err *err)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx;
	int r;

	*out = NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "cannot create a TLS context");
	if ((r = tls_ctx_common(ctx, ca, cert, key, err)) != 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	/* TLS 1.3 server tickets would let a client skip certificate checks on resumption. */
	SSL_CTX_set_num_tickets(ctx, 0);
	if ((names = SSL_load_client_CA_file(ca)) != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	ERR_clear_error();
	*out = ctx;
	return 0;
}

int
tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out, struct cg_err *err)
{
	SSL_CTX *ctx;
	int r;

	*out = NULL;
	if ((cert == NULL) != (key == NULL))
		return cg_err_set(err, CG_ERR_ARG, "a client certificate needs its key, and a key its certificate");
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "cannot create a TLS context");
	if ((r = tls_ctx_common(ctx, ca, cert, key, err)) != 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

static int
tls_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ? -1 : 0;
}

static int
tls_remaining(int64_t deadline)
{
	int64_t left = deadline - tls_now_ms();

	if (left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

/* Wait for the socket per the last SSL error; CG_ERR_IO on timeout. */
static int
tls_wait(struct tls_conn *c, int ssl_err, int64_t deadline, const char *what, struct cg_err *err)
{
	struct pollfd p;
	int ms, n;

	p.fd = c->fd;
	p.events = ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	for (;;) {
		if ((ms = tls_remaining(deadline)) == 0) {
			c->timed_out = 1;
			return cg_err_set(err, CG_ERR_IO, "%s timed out", what);
		}
		p.revents = 0;
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return cg_err_set(err, CG_ERR_IO, "%s: poll: %s", what, strerror(errno));
	}
}

static void
tls_peer_name(struct tls_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(c->peer, sizeof(c->peer), "?");
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(s6->sin6_port));
	}
}

static int
tls_conn_new(SSL_CTX *ctx, int fd, struct tls_conn **out, struct cg_err *err)
{
	struct tls_conn *c;
	int one = 1;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	c->fd = fd;
	tls_peer_name(c);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls_set_nonblock(fd) != 0 || (c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		tls_close(c);
		ERR_clear_error();
		return cg_err_set(err, CG_ERR_NOMEM, "cannot set up a TLS connection");
	}
	*out = c;
	return 0;
}

/* Why a handshake failed, as precisely as OpenSSL says. */
static int
tls_handshake_err(struct tls_conn *c, int ssl_err, int server, struct cg_err *err)
{
	long vr = SSL_get_verify_result(c->ssl);
	char buf[160];

	if (ssl_err == SSL_ERROR_SSL && vr != X509_V_OK) {
		ERR_clear_error();
		return cg_err_set(err, CG_ERR_CRYPTO, "%s certificate rejected: %s", server ? "client" : "server",
		    X509_verify_cert_error_string(vr));
	}
	/*
	 * OpenSSL 3 reports a peer that vanished mid-handshake (a killed server) as
	 * an SSL error; it is a dropped connection, which a retry may get past.
	 */
	if (ssl_err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return cg_err_set(err, CG_ERR_IO, "TLS handshake failed: connection closed by the peer");
	}
	if (ssl_err == SSL_ERROR_SSL)
		return cg_err_set(err, CG_ERR_CRYPTO, "TLS handshake failed: %s", tls_reason(buf));
	if (ssl_err == SSL_ERROR_ZERO_RETURN || (ssl_err == SSL_ERROR_SYSCALL && errno == 0))
		return cg_err_set(err, CG_ERR_IO, "TLS handshake failed: connection closed by the peer");
	if (ssl_err == SSL_ERROR_SYSCALL)
		return cg_err_set(err, CG_ERR_IO, "TLS handshake failed: %s", strerror(errno));
	return cg_err_set(err, CG_ERR_IO, "TLS handshake failed (error %d)", ssl_err);
}

static int
tls_handshake(struct tls_conn *c, int server, int64_t deadline, struct cg_err *err)
{
	int n, e, r;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		n = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (n == 1)
			return 0;
		e = SSL_get_error(c->ssl, n);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_handshake_err(c, e, server, err);
		if ((r = tls_wait(c, e, deadline, "TLS handshake", err)) != 0)
			return r;
	}
}

int
tls_accept(SSL_CTX *ctx, int fd, int64_t deadline, struct tls_conn **out, struct cg_err *err)
{
	struct tls_conn *c = NULL;
	int r;

	*out = NULL;
	if ((r = tls_conn_new(ctx, fd, &c, err)) != 0)
		return r;
	if ((r = tls_handshake(c, 1, deadline, err)) != 0) {
		tls_close(c);
		return r;
	}
	*out = c;
	return 0;
}

static int
tls_tcp_connect(const char *host, const char *port, int64_t deadline, int *fdp, struct cg_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, gai, soerr, r = CG_ERR_IO;
	socklen_t sl;
	struct pollfd p;

	*fdp = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0)
		return cg_err_set(err, CG_ERR_IO, "cannot resolve %s: %s", host, gai_strerror(gai));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
			continue;
		if (tls_set_nonblock(fd) != 0) {
			close(fd);
			fd = -1;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			for (;;) {
				int ms = tls_remaining(deadline);
				int n = ms > 0 ? poll(&p, 1, ms) : 0;

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					errno = ETIMEDOUT;
					break;
				}
				sl = sizeof(soerr);
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
					soerr = errno;
				errno = soerr;
				break;
			}
			if (errno == 0)
				break;
		}
		r = cg_err_set(err, CG_ERR_IO, "cannot connect to %s:%s: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (r == CG_ERR_IO && err != NULL && err->msg[0] == '\0')
			cg_err_set(err, CG_ERR_IO, "cannot connect to %s:%s", host, port);
		return CG_ERR_IO;
	}
	*fdp = fd;
	return 0;
}

int
tls_connect(SSL_CTX *ctx, const char *host, const char *port, int64_t deadline, struct tls_conn **out,
    struct cg_err *err)
{
	struct tls_conn *c = NULL;
	unsigned char addr[16];
	int fd, r, is_ip;

	*out = NULL;
	if (err != NULL)
		err->msg[0] = '\0';
	if ((r = tls_tcp_connect(host, port, deadline, &fd, err)) != 0)
		return r;
	if ((r = tls_conn_new(ctx, fd, &c, err)) != 0)
		return r;
	is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	/* The server must be the one named: its certificate's DNS name or IP address (RFC 6125). */
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1)
			goto setup;
	} else if (SSL_set1_host(c->ssl, host) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1)
		goto setup;
	if ((r = tls_handshake(c, 0, deadline, err)) != 0) {
		tls_close(c);
		return r;
	}
	*out = c;
	return 0;
setup:
	ERR_clear_error();
	tls_close(c);
	return cg_err_set(err, CG_ERR_ARG, "cannot check the server name %s", host);
}

int
tls_peer_identity(struct tls_conn *c, char out[PKI_IDENTITY_MAX + 1], struct cg_err *err)
{
	X509 *x;
	int r;

	out[0] = '\0';
	if ((x = SSL_get1_peer_certificate(c->ssl)) == NULL)
		return cg_err_set(err, CG_ERR_CRYPTO, "peer sent no certificate");
	r = pki_cert_identity(x, out, err);
	X509_free(x);
	return r;
}

static int
tls_io_err(struct tls_conn *c, int e, const char *what, struct cg_err *err)
{
	char buf[160];

	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
		return cg_err_set(err, CG_ERR_INCOMPLETE, "connection closed by the peer");
	if (e == SSL_ERROR_SSL) {
		unsigned long le = ERR_peek_last_error();

		if (ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return cg_err_set(err, CG_ERR_INCOMPLETE, "connection closed by the peer");
		}
		/* An alert (certificate expired, unknown CA, ...) will not pass on a retry. */
		return cg_err_set(err, CG_ERR_CRYPTO, "%s: %s", what, tls_reason(buf));
	}
	(void)c;
	return cg_err_set(err, CG_ERR_IO, "%s: %s", what, e == SSL_ERROR_SYSCALL ? strerror(errno) : "TLS error");
}

int
tls_read(struct tls_conn *c, void *buf, size_t n, int64_t deadline, size_t *got, struct cg_err *err)
{
	unsigned char *p = buf;
	size_t have = 0, k;
	int e, r = 0;

	while (have < n) {
		ERR_clear_error();
		errno = 0;
		if (SSL_read_ex(c->ssl, p + have, n - have, &k) == 1) {
			have += k;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if ((r = tls_wait(c, e, deadline, "read", err)) != 0)
				break;
			continue;
		}
		r = tls_io_err(c, e, "read", err);
		break;
	}
	if (got != NULL)
		*got = have;
	return r;
}

int
tls_read_some(struct tls_conn *c, void *buf, size_t n, int64_t deadline, size_t *got, struct cg_err *err)
{
	size_t k;
	int e, r;

	*got = 0;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if (SSL_read_ex(c->ssl, buf, n, &k) == 1) {
			*got = k;
			return 0;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_io_err(c, e, "read", err);
		if ((r = tls_wait(c, e, deadline, "read", err)) != 0)
			return r;
	}
}

int
tls_write(struct tls_conn *c, const void *buf, size_t n, int64_t deadline, struct cg_err *err)
{
	const unsigned char *p = buf;
	size_t done = 0, k;
	int e, r;

	while (done < n) {
		ERR_clear_error();
		errno = 0;
		if (SSL_write_ex(c->ssl, p + done, n - done, &k) == 1) {
			done += k;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if ((r = tls_wait(c, e, deadline, "write", err)) != 0)
				return r;
			continue;
		}
		return tls_io_err(c, e, "write", err);
	}
	return 0;
}

int
tls_wait_readable(struct tls_conn *c, int timeout_ms)
{
	struct pollfd p;
	int n;

	/* Read-ahead may already hold whole records the socket no longer shows (SSL_pending would not). */
	if (SSL_has_pending(c->ssl))
		return 1;
	p.fd = c->fd;
	p.events = POLLIN;
	p.revents = 0;
	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	return n > 0 ? 1 : 0;
}

int
tls_timed_out(const struct tls_conn *c)
{
	return c->timed_out;
}

const char *
tls_peer_addr(const struct tls_conn *c)
{
	return c->peer;
}

void
tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		/* One try at close_notify: a peer that does not read must not hold us here. */
		if (!c->timed_out && SSL_is_init_finished(c->ssl))
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

int
tls_split_hostport(const char *s, char host[TLS_HOST_MAX], char port[8], struct cg_err *err)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hlen, plen, i;

	host[0] = port[0] = '\0';
	if (colon == NULL || colon == s)
		return cg_err_set(err, CG_ERR_ARG, "'%.64s' is not HOST:PORT", s);
	hlen = (size_t)(colon - s);
	plen = strlen(colon + 1);
	if (plen == 0 || plen > 5)
		return cg_err_set(err, CG_ERR_ARG, "'%.64s' is not HOST:PORT", s);
	for (i = 0; i < plen; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return cg_err_set(err, CG_ERR_ARG, "'%.64s': bad port", s);
	if (atoi(colon + 1) > 65535)
		return cg_err_set(err, CG_ERR_ARG, "'%.64s': bad port", s);
	if (s[0] == '[') {
		if (hlen < 3 || s[hlen - 1] != ']')
			return cg_err_set(err, CG_ERR_ARG, "'%.64s' is not [ADDRESS]:PORT", s);
		h = s + 1;
		hlen -= 2;
	}
	if (hlen >= TLS_HOST_MAX)
		return cg_err_set(err, CG_ERR_ARG, "host name too long");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, plen + 1);
	return 0;
}

/*
 * pki.h - a small certificate authority for crossgate's mutual TLS
 * (OpenSSL X509 API, Ed25519 keys).
 *
 * A deployment has one CA (the policy's network.ca); the gateway's server
 * certificate and one client certificate per principal are issued by it.
 *
 * Identity.  A client certificate names its principal in a subjectAltName
 * URI beginning with "crossgate:" (by convention crossgate:<role>:<id>, e.g.
 * crossgate:partner:k); the policy's `identity` of a principal is matched
 * against it byte for byte.  A certificate without such a URI falls back to
 * its subject CN (exactly one CN).  Identities are printable ASCII, at most
 * PKI_IDENTITY_MAX bytes; anything else is refused rather than guessed at.
 *
 * Files: PEM.  A private key is created 0600 and never overwritten unless
 * `force`; certificates are 0644.
 */
#ifndef CG_PKI_H
#define CG_PKI_H

#include <stddef.h>
#include <openssl/x509.h>
#include "base/err.h"

#define PKI_IDENTITY_MAX 256
#define PKI_NAMES_MAX 8
#define PKI_DAYS_DEFAULT 825
#define PKI_DAYS_MAX 36500
#define PKI_URI_PREFIX "crossgate:"

enum pki_kind {
	PKI_SERVER = 1,               /* extendedKeyUsage serverAuth; SAN DNS/IP names */
	PKI_CLIENT,                   /* extendedKeyUsage clientAuth; SAN URI identity */
};

struct pki_issue_opts {
	enum pki_kind kind;
	const char *cn;               /* subject CN (required) */
	const char *uri;              /* client: SAN URI (crossgate:...), NULL for none */
	const char *dns[PKI_NAMES_MAX];
	size_t ndns;
	const char *ip[PKI_NAMES_MAX];
	size_t nip;
	int days;                     /* 1..PKI_DAYS_MAX from now */
	int expired;                  /* valid from 2 days ago to 1 day ago (tests) */
	int force;                    /* overwrite existing files */
};

/* A self-signed CA certificate and its key (CN `cn`, valid `days` from now). */
int pki_make_ca(const char *cert_path, const char *key_path, const char *cn, int days, int force,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* A certificate signed by the CA in ca_cert/ca_key, and its fresh key. */
int pki_issue(const char *ca_cert, const char *ca_key, const struct pki_issue_opts *o, const char *cert_path,
    const char *key_path, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 5);

/* The identity of a certificate as described above, into out (NUL-terminated). */
int pki_cert_identity(X509 *cert, char out[PKI_IDENTITY_MAX + 1], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* Load a PEM certificate (caller frees with X509_free). */
int pki_load_cert(const char *path, X509 **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

#endif

/* pki.c - see pki.h */
#include "net/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base/outfile.h"

static int
pki_ssl_err(struct cg_err *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		return cg_err_set(err, code, "%s: %s", what, buf);
	}
	return cg_err_set(err, code, "%s", what);
}

/* Names that go into an OpenSSL extension string: no separators, printable. */
static int
pki_name_ok(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > PKI_IDENTITY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e || s[i] == ',' || s[i] == '"')
			return 0;
	return 1;
}

/*
 * Through base/outfile.h (a random temporary name, O_EXCL|O_NOFOLLOW, renamed
 * into place): a symlink planted at the path cannot redirect a key.  Without
 * `force` an existing file is refused.  The mode is set exactly (the umask
 * would narrow a certificate's 0644).
 */
static int
pki_create(struct outfile *o, const char *path, mode_t mode, int force, struct cg_err *err)
{
	struct stat sb;
	int r;

	if (!force && lstat(path, &sb) == 0)
		return cg_err_set(err, CG_ERR_IO, "%s exists (use --force to replace it)", path);
	if ((r = outfile_open(o, path, mode, err)) != 0)
		return r;
	if (fchmod(fileno(o->f), mode) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		outfile_abort(o);
	}
	return r;
}

static int
pki_write(const char *cert_path, const char *key_path, X509 *x, EVP_PKEY *key, int force, struct cg_err *err)
{
	struct outfile o;
	int r;

	if ((r = pki_create(&o, key_path, 0600, force, err)) != 0)
		return r;
	if (PEM_write_PrivateKey(o.f, key, NULL, NULL, 0, NULL, NULL) != 1) {
		outfile_abort(&o);
		return pki_ssl_err(err, CG_ERR_IO, key_path);
	}
	if ((r = outfile_commit(&o, err)) != 0)
		return r;
	if ((r = pki_create(&o, cert_path, 0644, force, err)) != 0)
		goto fail;
	if (PEM_write_X509(o.f, x) != 1) {
		outfile_abort(&o);
		r = pki_ssl_err(err, CG_ERR_IO, cert_path);
		goto fail;
	}
	if ((r = outfile_commit(&o, err)) != 0)
		goto fail;
	return 0;
fail:
	/* Never leave a key without its certificate. */
	unlink(key_path);
	return r;
}

static int
pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct cg_err *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return pki_ssl_err(err, CG_ERR_INTERNAL, "cannot make a certificate extension");
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1)
		return pki_ssl_err(err, CG_ERR_INTERNAL, "cannot add a certificate extension");
	return 0;
}

/* A new certificate with a random positive 128-bit serial, subject CN, and validity. */
static int
pki_new_cert(const char *cn, int days, int expired, EVP_PKEY *key, X509 **out, struct cg_err *err)
{
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	int r = CG_ERR_INTERNAL;

	*out = NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return pki_ssl_err(err, CG_ERR_INTERNAL, "no random bytes");
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    (bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
		r = pki_ssl_err(err, CG_ERR_NOMEM, "cannot make a certificate");
		goto out;
	}
	if (expired) {
		if (X509_gmtime_adj(X509_getm_notBefore(x), -2L * 86400) == NULL ||
		    X509_gmtime_adj(X509_getm_notAfter(x), -1L * 86400) == NULL)
			goto bad;
	} else if (X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||   /* clock skew */
	    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) == NULL)
		goto bad;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		goto bad;
	*out = x;
	x = NULL;   /* transferred */
	r = 0;
	goto out;
bad:
	r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot fill in a certificate");
out:
	BN_free(bn);
	X509_free(x);
	return r;
}

int
pki_make_ca(const char *cert_path, const char *key_path, const char *cn, int days, int force, struct cg_err *err)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int r;

	if (!pki_name_ok(cn))
		return cg_err_set(err, CG_ERR_ARG, "CA name must be printable ASCII without spaces or commas");
	if (days < 1 || days > PKI_DAYS_MAX)
		return cg_err_set(err, CG_ERR_ARG, "validity must be 1 to %d days", PKI_DAYS_MAX);
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		return pki_ssl_err(err, CG_ERR_INTERNAL, "cannot generate a key");
	if ((r = pki_new_cert(cn, days, 0, key, &x, err)) != 0)
		goto out;
	if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) {
		r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot set the issuer");
		goto out;
	}
	if ((r = pki_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err)) != 0 ||
	    (r = pki_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err)) != 0 ||
	    (r = pki_add_ext(x, x, NID_subject_key_identifier, "hash", err)) != 0)
		goto out;
	/* Ed25519 signs the message itself: no separate digest. */
	if (X509_sign(x, key, NULL) <= 0) {
		r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot sign the CA certificate");
		goto out;
	}
	r = pki_write(cert_path, key_path, x, key, force, err);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

int
pki_load_cert(const char *path, X509 **out, struct cg_err *err)
{
	FILE *f;

	*out = NULL;
	if ((f = fopen(path, "r")) == NULL)
		return cg_err_set(err, CG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (*out == NULL)
		return pki_ssl_err(err, CG_ERR_FORMAT, path);
	return 0;
}

static int
pki_load_key(const char *path, EVP_PKEY **out, struct cg_err *err)
{
	struct stat sb;
	FILE *f;

	*out = NULL;
	if ((f = fopen(path, "r")) == NULL)
		return cg_err_set(err, CG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0) {
		fclose(f);
		return cg_err_set(err, CG_ERR_PERM, "%s: private key readable by group or others (chmod 600)", path);
	}
	*out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (*out == NULL)
		return pki_ssl_err(err, CG_ERR_FORMAT, path);
	return 0;
}

int
pki_issue(const char *ca_cert, const char *ca_key, const struct pki_issue_opts *o, const char *cert_path,
    const char *key_path, struct cg_err *err)
{
	EVP_PKEY *key = NULL, *cakey = NULL;
	X509 *x = NULL, *ca = NULL;
	char san[PKI_NAMES_MAX * 2 * (PKI_IDENTITY_MAX + 8) + PKI_IDENTITY_MAX + 16];
	size_t i, off = 0;
	int r;

	if (o->cn == NULL || !pki_name_ok(o->cn))
		return cg_err_set(err, CG_ERR_ARG, "certificate name must be printable ASCII without spaces or commas");
	if (!o->expired && (o->days < 1 || o->days > PKI_DAYS_MAX))
		return cg_err_set(err, CG_ERR_ARG, "validity must be 1 to %d days", PKI_DAYS_MAX);
	if (o->kind != PKI_SERVER && o->kind != PKI_CLIENT)
		return cg_err_set(err, CG_ERR_ARG, "unknown certificate kind");
	if (o->uri != NULL && (!pki_name_ok(o->uri) || strncmp(o->uri, PKI_URI_PREFIX, strlen(PKI_URI_PREFIX)) != 0))
		return cg_err_set(err, CG_ERR_ARG, "identity must start with '%s' and be printable ASCII without "
		    "spaces or commas", PKI_URI_PREFIX);
	if (o->ndns > PKI_NAMES_MAX || o->nip > PKI_NAMES_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "at most %d DNS names and %d addresses", PKI_NAMES_MAX,
		    PKI_NAMES_MAX);
	if (o->kind == PKI_SERVER && o->ndns + o->nip == 0)
		return cg_err_set(err, CG_ERR_ARG, "a server certificate needs a DNS name or an IP address");
	san[0] = '\0';
	for (i = 0; i < o->ndns; i++) {
		if (!pki_name_ok(o->dns[i]))
			return cg_err_set(err, CG_ERR_ARG, "bad DNS name");
		off += (size_t)snprintf(san + off, sizeof(san) - off, "%sDNS:%s", off ? "," : "", o->dns[i]);
	}
	for (i = 0; i < o->nip; i++) {
		if (!pki_name_ok(o->ip[i]))
			return cg_err_set(err, CG_ERR_ARG, "bad IP address");
		off += (size_t)snprintf(san + off, sizeof(san) - off, "%sIP:%s", off ? "," : "", o->ip[i]);
	}
	if (o->uri != NULL)
		off += (size_t)snprintf(san + off, sizeof(san) - off, "%sURI:%s", off ? "," : "", o->uri);

	if ((r = pki_load_cert(ca_cert, &ca, err)) != 0 || (r = pki_load_key(ca_key, &cakey, err)) != 0)
		goto out;
	if (X509_check_private_key(ca, cakey) != 1) {
		ERR_clear_error();
		r = cg_err_set(err, CG_ERR_ARG, "%s is not the key of %s", ca_key, ca_cert);
		goto out;
	}
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL) {
		r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot generate a key");
		goto out;
	}
	if ((r = pki_new_cert(o->cn, o->days, o->expired, key, &x, err)) != 0)
		goto out;
	if (X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1) {
		r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot set the issuer");
		goto out;
	}
	if ((r = pki_add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", err)) != 0 ||
	    (r = pki_add_ext(x, ca, NID_key_usage, "critical,digitalSignature", err)) != 0 ||
	    (r = pki_add_ext(x, ca, NID_ext_key_usage, o->kind == PKI_SERVER ? "serverAuth" : "clientAuth",
	    err)) != 0 ||
	    (r = pki_add_ext(x, ca, NID_subject_key_identifier, "hash", err)) != 0 ||
	    (r = pki_add_ext(x, ca, NID_authority_key_identifier, "keyid:always", err)) != 0)
		goto out;
	if (off > 0 && (r = pki_add_ext(x, ca, NID_subject_alt_name, san, err)) != 0)
		goto out;
	if (X509_sign(x, cakey, NULL) <= 0) {
		r = pki_ssl_err(err, CG_ERR_INTERNAL, "cannot sign the certificate");
		goto out;
	}
	r = pki_write(cert_path, key_path, x, key, o->force, err);
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return r;
}

static int
pki_identity_ok(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PKI_IDENTITY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
pki_cert_identity(X509 *cert, char out[PKI_IDENTITY_MAX + 1], struct cg_err *err)
{
	GENERAL_NAMES *names;
	X509_NAME *subj;
	X509_NAME_ENTRY *ne;
	const ASN1_STRING *as;
	size_t plen = strlen(PKI_URI_PREFIX);
	int i, idx, found = 0, r = CG_ERR_FORMAT;

	out[0] = '\0';
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const unsigned char *d;
		size_t len;

		if (gn->type != GEN_URI)
			continue;
		d = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len < plen || memcmp(d, PKI_URI_PREFIX, plen) != 0)
			continue;
		/* Two crossgate identities in one certificate would make its rights ambiguous. */
		if (found) {
			r = cg_err_set(err, CG_ERR_FORMAT, "certificate has more than one %s identity", PKI_URI_PREFIX);
			goto out;
		}
		if (!pki_identity_ok(d, len)) {
			r = cg_err_set(err, CG_ERR_FORMAT, "certificate identity URI is not 1 to %d printable "
			    "ASCII characters", PKI_IDENTITY_MAX);
			goto out;
		}
		memcpy(out, d, len);
		out[len] = '\0';
		found = 1;
	}
	if (found) {
		r = 0;
		goto out;
	}
	subj = X509_get_subject_name(cert);
	if ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "certificate has no %s identity URI and not exactly one "
		    "subject CN", PKI_URI_PREFIX);
		goto out;
	}
	ne = X509_NAME_get_entry(subj, idx);
	as = X509_NAME_ENTRY_get_data(ne);
	if (!pki_identity_ok(ASN1_STRING_get0_data(as), (size_t)ASN1_STRING_length(as))) {
		r = cg_err_set(err, CG_ERR_FORMAT, "certificate CN is not 1 to %d printable ASCII characters",
		    PKI_IDENTITY_MAX);
		goto out;
	}
	memcpy(out, ASN1_STRING_get0_data(as), (size_t)ASN1_STRING_length(as));
	out[ASN1_STRING_length(as)] = '\0';
	r = 0;
out:
	GENERAL_NAMES_free(names);
	if (r != 0)
		out[0] = '\0';
	return r;
}

/* test_pki.c - the small CA: certificates, identities, files */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cgtest.h"
#include "net/pki.h"

static char dir[256];

static const char *
at(const char *name)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

int
main(void)
{
	struct pki_issue_opts o;
	struct cg_err err;
	struct stat sb;
	X509 *x = NULL, *ca = NULL;
	EVP_PKEY *capub;
	char id[PKI_IDENTITY_MAX + 1];

	snprintf(dir, sizeof(dir), "/tmp/cg-test-pki-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 2;

	/* CA */
	CHECK_EQ_INT(pki_make_ca(at("ca.pem"), at("ca.key"), "test-ca", 30, 0, &err), 0);
	CHECK(stat(at("ca.key"), &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK_EQ_INT(pki_make_ca(at("ca.pem"), at("ca.key"), "test-ca", 30, 0, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "exists (use --force to replace it)");
	CHECK_EQ_INT(pki_make_ca(at("ca.pem"), at("ca.key"), "test-ca", 30, 1, &err), 0);
	/* --force with symlinks planted at both paths: replaced, their target untouched */
	{
		FILE *v = fopen(at("victim"), "w");
		char buf[16] = "";

		CHECK(v != NULL && fputs("precious", v) >= 0 && fclose(v) == 0);
		CHECK(symlink(at("victim"), at("s.key")) == 0 && symlink(at("victim"), at("s.pem")) == 0);
		CHECK_EQ_INT(pki_make_ca(at("s.pem"), at("s.key"), "test-ca", 30, 1, &err), 0);
		v = fopen(at("victim"), "r");
		CHECK(v != NULL && fgets(buf, sizeof(buf), v) != NULL);
		if (v != NULL)
			fclose(v);
		CHECK_STR(buf, "precious");
		CHECK(lstat(at("s.key"), &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600);
		CHECK(lstat(at("s.pem"), &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0644);
		/* without --force, a symlink at the path counts as an existing file */
		CHECK(symlink(at("victim"), at("t.key")) == 0);
		CHECK_EQ_INT(pki_make_ca(at("t.pem"), at("t.key"), "test-ca", 30, 0, &err), CG_ERR_IO);
		CHECK_CONTAINS(err.msg, "exists (use --force to replace it)");
	}
	CHECK_EQ_INT(pki_make_ca(at("x.pem"), at("x.key"), "bad name", 30, 0, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "CA name must be printable ASCII");
	CHECK_EQ_INT(pki_make_ca(at("x.pem"), at("x.key"), "ca", 0, 0, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "validity must be 1 to");
	CHECK_EQ_INT(pki_load_cert(at("ca.pem"), &ca, &err), 0);
	CHECK(ca != NULL && X509_check_ca(ca) == 1);

	/* a client certificate: identity from the SAN URI, signed by the CA, clientAuth */
	memset(&o, 0, sizeof(o));
	o.kind = PKI_CLIENT;
	o.cn = "k";
	o.uri = "crossgate:partner:k";
	o.days = 10;
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("k.pem"), at("k.key"), &err), 0);
	CHECK(stat(at("k.key"), &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK_EQ_INT(pki_load_cert(at("k.pem"), &x, &err), 0);
	CHECK_EQ_INT(pki_cert_identity(x, id, &err), 0);
	CHECK_STR(id, "crossgate:partner:k");
	capub = X509_get0_pubkey(ca);
	CHECK_EQ_INT(X509_verify(x, capub), 1);
	CHECK(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
	CHECK((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0);
	X509_free(x);
	x = NULL;

	/* no crossgate: URI: the CN is the identity */
	o.uri = NULL;
	o.cn = "legacy-client";
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("cn.pem"), at("cn.key"), &err), 0);
	CHECK_EQ_INT(pki_load_cert(at("cn.pem"), &x, &err), 0);
	CHECK_EQ_INT(pki_cert_identity(x, id, &err), 0);
	CHECK_STR(id, "legacy-client");
	X509_free(x);
	x = NULL;

	/* expired */
	o.cn = "old";
	o.uri = "crossgate:partner:k";
	o.expired = 1;
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("old.pem"), at("old.key"), &err), 0);
	CHECK_EQ_INT(pki_load_cert(at("old.pem"), &x, &err), 0);
	CHECK(X509_cmp_current_time(X509_get0_notAfter(x)) < 0);
	X509_free(x);
	x = NULL;
	o.expired = 0;

	/* a server certificate with DNS and IP names */
	memset(&o, 0, sizeof(o));
	o.kind = PKI_SERVER;
	o.cn = "gateway";
	o.dns[o.ndns++] = "localhost";
	o.ip[o.nip++] = "127.0.0.1";
	o.days = 10;
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("gw.pem"), at("gw.key"), &err), 0);
	CHECK_EQ_INT(pki_load_cert(at("gw.pem"), &x, &err), 0);
	CHECK_EQ_INT(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	CHECK_EQ_INT(X509_check_host(x, "example.com", 0, 0, NULL), 0);
	CHECK_EQ_INT(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	CHECK((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0);
	X509_free(x);
	x = NULL;

	/* refusals */
	o.ndns = o.nip = 0;
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("s.pem"), at("s.key"), &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "a server certificate needs a DNS name or an IP address");
	memset(&o, 0, sizeof(o));
	o.kind = PKI_CLIENT;
	o.cn = "x";
	o.days = 1;
	o.uri = "https://example.com/";
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("u.pem"), at("u.key"), &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "identity must start with 'crossgate:'");
	o.uri = "crossgate:a,URI:crossgate:b";
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("u.pem"), at("u.key"), &err), CG_ERR_ARG);
	o.uri = "crossgate:partner:k";
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("nope.key"), &o, at("u.pem"), at("u.key"), &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "cannot open");
	CHECK(access(at("u.key"), F_OK) != 0);
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca.key"), &o, at("k.pem"), at("k.key"), &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "exists");
	/* another CA's key with this CA's certificate */
	CHECK_EQ_INT(pki_make_ca(at("ca2.pem"), at("ca2.key"), "other", 30, 0, &err), 0);
	CHECK_EQ_INT(pki_issue(at("ca.pem"), at("ca2.key"), &o, at("v.pem"), at("v.key"), &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "is not the key of");
	/* a CA key readable by others is refused */
	chmod(at("ca2.key"), 0644);
	CHECK_EQ_INT(pki_issue(at("ca2.pem"), at("ca2.key"), &o, at("v.pem"), at("v.key"), &err), CG_ERR_PERM);
	CHECK_CONTAINS(err.msg, "readable by group or others");
	CHECK_EQ_INT(pki_load_cert(at("k.key"), &x, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(pki_load_cert(at("missing.pem"), &x, &err), CG_ERR_IO);

	X509_free(ca);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	CGT_DONE();
}

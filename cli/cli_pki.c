/* cli_pki.c - crossgate pki */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "net/pki.h"
#include "cli/cli.h"
#include "cli/cliopt.h"

static const char pki_usage[] =
	"crossgate pki init  --dir DIR [--client ROLE:ID]... [--dns NAME]... [--ip ADDR]... [--days N] [--force]\n"
	"       crossgate pki ca    --dir DIR [--cn NAME] [--days N] [--force]\n"
	"       crossgate pki issue --dir DIR --name NAME (--server [--dns NAME]... [--ip ADDR]... |\n"
	"                           --client IDENTITY) [--days N | --expired] [--ca-dir DIR] [--force]\n"
	"       crossgate pki show  CERT";

static const char pki_help[] =
	"Make the certificates of mutual TLS (Ed25519 keys, PEM files; keys 0600).\n"
	"\n"
	"  init   a CA (DIR/ca.pem, DIR/ca.key), the gateway's server certificate\n"
	"         (DIR/gateway.pem, .key; DNS localhost and IP 127.0.0.1 unless --dns/--ip\n"
	"         are given) and, for each --client ROLE:ID, DIR/ID.pem and DIR/ID.key\n"
	"         with the identity crossgate:ROLE:ID.\n"
	"  ca     a CA only.\n"
	"  issue  one certificate signed by the CA in --ca-dir (default DIR): a server\n"
	"         certificate for the names given, or a client certificate whose\n"
	"         identity is the SAN URI IDENTITY (it must start with 'crossgate:').\n"
	"         --expired makes one that expired yesterday (for tests).\n"
	"  show   a certificate's identity, issuer and validity.\n"
	"\n"
	"The gateway matches a client certificate's identity (its crossgate: SAN URI,\n"
	"else its subject CN) against the policy's principals.  Point the policy's\n"
	"network.ca at ca.pem; keep ca.key offline.  Default validity: 825 days.\n";

struct pki_args {
	const char *dir, *ca_dir, *name, *cn, *client;
	const char *clients_v[64], *dns_v[PKI_NAMES_MAX], *ip_v[PKI_NAMES_MAX];
	struct cliopt_list clients, dns, ip;
	int days, expired, force, server;
};

static void
pki_path(char *out, size_t size, const char *dir, const char *name, const char *ext)
{
	snprintf(out, size, "%s/%s.%s", dir, name, ext);
}

static int
pki_do_ca(const struct pki_args *a, struct cli_ctx *ctx)
{
	char cert[1200], key[1200];
	struct cg_err err;

	pki_path(cert, sizeof(cert), a->dir, "ca", "pem");
	pki_path(key, sizeof(key), a->dir, "ca", "key");
	cg_err_clear(&err);
	if (pki_make_ca(cert, key, a->cn != NULL ? a->cn : "crossgate-ca", a->days, a->force, &err) != 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (ctx->out)
		fprintf(ctx->out, "CA certificate %s (key %s, keep it offline)\n", cert, key);
	return 0;
}

static int
pki_do_issue(const struct pki_args *a, const char *name, const char *identity, int server, struct cli_ctx *ctx)
{
	struct pki_issue_opts o;
	char cacert[1200], cakey[1200], cert[1200], key[1200];
	const char *cadir = a->ca_dir != NULL ? a->ca_dir : a->dir;
	struct cg_err err;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.kind = server ? PKI_SERVER : PKI_CLIENT;
	o.cn = name;
	o.uri = identity;
	o.days = a->days;
	o.expired = a->expired;
	o.force = a->force;
	if (server) {
		for (i = 0; i < a->dns.n; i++)
			o.dns[o.ndns++] = a->dns.v[i];
		for (i = 0; i < a->ip.n; i++)
			o.ip[o.nip++] = a->ip.v[i];
		if (o.ndns + o.nip == 0) {
			o.dns[o.ndns++] = "localhost";
			o.ip[o.nip++] = "127.0.0.1";
		}
	}
	pki_path(cacert, sizeof(cacert), cadir, "ca", "pem");
	pki_path(cakey, sizeof(cakey), cadir, "ca", "key");
	pki_path(cert, sizeof(cert), a->dir, name, "pem");
	pki_path(key, sizeof(key), a->dir, name, "key");
	cg_err_clear(&err);
	if (pki_issue(cacert, cakey, &o, cert, key, &err) != 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (ctx->out) {
		if (server)
			fprintf(ctx->out, "server certificate %s (key %s)\n", cert, key);
		else
			fprintf(ctx->out, "client certificate %s (key %s), identity %s%s\n", cert, key, identity,
			    a->expired ? ", already expired" : "");
	}
	return 0;
}

static int
pki_do_show(const char *path, struct cli_ctx *ctx)
{
	X509 *x = NULL;
	char id[PKI_IDENTITY_MAX + CG_ERR_MSG_MAX + 16], issuer[256];
	struct cg_err err;
	BIO *b;
	int r = 1;

	cg_err_clear(&err);
	if (pki_load_cert(path, &x, &err) != 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (pki_cert_identity(x, id, &err) != 0)
		snprintf(id, sizeof(id), "(none: %s)", err.msg);
	X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
	if (ctx->out) {
		fprintf(ctx->out, "identity   %s\nissuer     %s\n", id, issuer);
		if ((b = BIO_new_fp(ctx->out, BIO_NOCLOSE)) != NULL) {
			BIO_puts(b, "not before ");
			ASN1_TIME_print(b, X509_get0_notBefore(x));
			BIO_puts(b, "\nnot after  ");
			ASN1_TIME_print(b, X509_get0_notAfter(x));
			BIO_puts(b, "\n");
			BIO_free(b);
		}
	}
	r = 0;
	X509_free(x);
	return r;
}

int
cmd_pki(int argc, char **argv, struct cli_ctx *ctx)
{
	struct pki_args a;
	const struct cliopt opts[] = { CLIOPT_STR("dir", &a.dir), CLIOPT_STR("ca-dir", &a.ca_dir),
		CLIOPT_STR("name", &a.name), CLIOPT_STR("cn", &a.cn), CLIOPT_LIST("client", &a.clients),
		CLIOPT_FLAG("server", &a.server), CLIOPT_LIST("dns", &a.dns), CLIOPT_LIST("ip", &a.ip),
		CLIOPT_UINT("days", &a.days, 0, PKI_DAYS_MAX), CLIOPT_FLAG("expired", &a.expired),
		CLIOPT_FLAG("force", &a.force), CLIOPT_END };
	const char *sub;
	size_t i;
	int argi, r;

	memset(&a, 0, sizeof(a));
	a.days = PKI_DAYS_DEFAULT;
	a.clients = (struct cliopt_list){ a.clients_v, 0, sizeof(a.clients_v) / sizeof(a.clients_v[0]) };
	a.dns = (struct cliopt_list){ a.dns_v, 0, PKI_NAMES_MAX };
	a.ip = (struct cliopt_list){ a.ip_v, 0, PKI_NAMES_MAX };
	if (cliopt_parse(argc, argv, pki_usage, pki_help, opts, &argi, &r))
		return r;
	a.client = a.clients.n > 0 ? a.clients.v[a.clients.n - 1] : NULL;
	if (argi >= argc)
		return cli_usage(pki_usage, "missing pki command (init, ca, issue, show)");
	sub = argv[argi];
	if (strcmp(sub, "show") == 0) {
		if (argi + 2 != argc)
			return cli_usage(pki_usage, "pki show takes one certificate file");
		return pki_do_show(argv[argi + 1], ctx);
	}
	if (argi + 1 != argc)
		return cli_usage(pki_usage, "unexpected argument");
	if (a.dir == NULL)
		return cli_missing(pki_usage, "--dir");
	if (cli_mkdir(a.dir, 0700) != 0)
		return 1;
	if (strcmp(sub, "ca") == 0)
		return pki_do_ca(&a, ctx);
	if (strcmp(sub, "issue") == 0) {
		if (a.name == NULL)
			return cli_missing(pki_usage, "--name");
		if (a.server == (a.clients.n == 1) || a.clients.n > 1)
			return cli_usage(pki_usage, "pki issue needs exactly one of --server or --client IDENTITY");
		if (strchr(a.name, '/') != NULL || strcmp(a.name, "ca") == 0)
			return cli_usage(pki_usage, "--name is a file name stem, not a path, and not 'ca'");
		return pki_do_issue(&a, a.name, a.server ? NULL : a.client, a.server, ctx);
	}
	if (strcmp(sub, "init") == 0) {
		if (a.expired)
			return cli_usage(pki_usage, "--expired is for pki issue");
		if (pki_do_ca(&a, ctx) != 0 || pki_do_issue(&a, "gateway", NULL, 1, ctx) != 0)
			return 1;
		for (i = 0; i < a.clients.n; i++) {
			const char *colon = strchr(a.clients.v[i], ':');
			char identity[PKI_IDENTITY_MAX + 1];

			if (colon == NULL || colon == a.clients.v[i] || colon[1] == '\0' || strchr(colon + 1, '/') != NULL ||
			    strcmp(colon + 1, "ca") == 0 || strcmp(colon + 1, "gateway") == 0) {
				cli_error("--client %s: want ROLE:ID (e.g. partner:k), ID not 'ca' or 'gateway'",
				    a.clients.v[i]);
				return CLI_USAGE;
			}
			snprintf(identity, sizeof(identity), "%s%s", PKI_URI_PREFIX, a.clients.v[i]);
			if (pki_do_issue(&a, colon + 1, identity, 0, ctx) != 0)
				return 1;
		}
		return 0;
	}
	return cli_usage(pki_usage, "unknown pki command (init, ca, issue, show)");
}

/*
 * crossgate_main.c - the `crossgate` command: a table of subcommands, each
 * with --help.  Commands only parse options, call the modules and print.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "agent/pack.h"
#include "crypto/err.h"
#include "crypto/keyfile.h"
#include "gateway/audit.h"
#include "gateway/cli.h"
#include "gateway/export.h"
#include "gateway/ingest.h"
#include "gateway/store.h"
#include "policy/policy.h"

#define CLI_USAGE 2

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("crossgate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
cli_usage(const char *usage, const char *bad)
{
	if (bad != NULL)
		fprintf(stderr, "crossgate: %s\n", bad);
	fprintf(stderr, "usage: %s\n(try --help)\n", usage);
	return CLI_USAGE;
}

static int
cli_missing(const char *usage, const char *opt)
{
	fprintf(stderr, "crossgate: missing required option %s\nusage: %s\n", opt, usage);
	return CLI_USAGE;
}

/* getopt_long state is global: reset it before each command so the demo can run many. */
static void
cli_getopt_reset(void)
{
	optind = 0;
	opterr = 1;
}

static int
cli_mkdir(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) != 0 && errno != EEXIST) {
		cli_error("cannot create directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- keygen ---------------------------------------------------------------- */

static const char keygen_usage[] =
	"crossgate keygen gateway --dir DIR [--db DB] [--force]\n"
	"       crossgate keygen partner --id ID --dir DIR [--force]\n"
	"       crossgate keygen match --out FILE [--force]";

static const char keygen_help[] =
	"Generate keys.  Secret key files are written 0600 and never overwritten\n"
	"without --force; public key files (.pub) are safe to share.\n"
	"\n"
	"  gateway   DIR/enc.key + enc.pub   X25519: partners seal batch keys to it\n"
	"            DIR/sign.key + sign.pub Ed25519: signs audit checkpoints\n"
	"            DIR/storage.key         encrypts feature values at rest\n"
	"            --db DB                 also record the key generation in DB's audit log\n"
	"  partner   DIR/sign.key + sign.pub Ed25519: the partner signs its batches;\n"
	"            paste the line of sign.pub into the policy as signing_key\n"
	"  match     FILE                    the partners' shared match key (token PRF);\n"
	"            give it to every partner's agent, never to the gateway\n";

static int
keygen_pair(const char *dir, const char *base, enum keyfile_type type, const char *comment, int force,
    struct keyfile_key **secret_out, struct keyfile_key **pub_out)
{
	struct keyfile_key *sec = NULL, *pub = NULL;
	struct cg_err err;
	char path[4096], cbuf[256];
	int r = -1;

	cg_err_clear(&err);
	if (keyfile_generate(type, &sec, &err) != 0 || keyfile_public_of(sec, &pub, &err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.key", dir, base);
	snprintf(cbuf, sizeof(cbuf), "%s secret key: keep this file private", comment);
	if (keyfile_write(path, sec, cbuf, force, &err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.pub", dir, base);
	snprintf(cbuf, sizeof(cbuf), "%s public key", comment);
	if (keyfile_write(path, pub, cbuf, force, &err) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		cli_error("%s", err.msg);
	if (r == 0 && secret_out != NULL) {
		*secret_out = sec;
		sec = NULL;
	}
	if (r == 0 && pub_out != NULL) {
		*pub_out = pub;
		pub = NULL;
	}
	keyfile_free(sec);
	keyfile_free(pub);
	return r;
}

static int
keygen_symmetric(const char *path, enum keyfile_type type, const char *comment, int force,
    struct keyfile_key **out)
{
	struct keyfile_key *k = NULL;
	struct cg_err err;
	int r = -1;

	cg_err_clear(&err);
	if (keyfile_generate(type, &k, &err) != 0 || keyfile_write(path, k, comment, force, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
	if (out != NULL) {
		*out = k;
		k = NULL;
	}
out:
	keyfile_free(k);
	return r;
}

/* Record a gateway key generation in the audit log: ids and public keys only. */
static int
keygen_audit(const char *db, const struct keyfile_key *sign, const struct keyfile_key *enc_pub,
    const struct keyfile_key *sign_pub, const struct keyfile_key *storage)
{
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	Crossgate__AuditEvent ev;
	char ids[3][17], lines[2][KEYFILE_LINE_MAX], *idp[3], *linep[2];
	int r = -1;

	cg_err_clear(&err);
	keyfile_id_hex(enc_pub->id, ids[0]);
	keyfile_id_hex(sign_pub->id, ids[1]);
	keyfile_id_hex(storage->id, ids[2]);
	if (keyfile_public_line(enc_pub, lines[0], sizeof(lines[0])) != 0 ||
	    keyfile_public_line(sign_pub, lines[1], sizeof(lines[1])) != 0)
		goto out;
	idp[0] = ids[0]; idp[1] = ids[1]; idp[2] = ids[2];
	linep[0] = lines[0]; linep[1] = lines[1];
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, sign, &a, &err) != 0)
		goto out;
	crossgate__audit_event__init(&ev);
	ev.actor = (char *)"operator";
	ev.action = (char *)"keygen";
	ev.outcome = (char *)"ok";
	ev.key_ids = idp;
	ev.n_key_ids = 3;
	ev.public_keys = linep;
	ev.n_public_keys = 2;
	if (audit_log(a, &ev, &err) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		cli_error("%s", err.msg[0] ? err.msg : "cannot record the key generation");
	audit_free(a);
	store_close(st);
	return r;
}

int
cmd_keygen(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' }, { "id", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' }, { "db", required_argument, NULL, 'b' },
		{ "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	const char *dir = NULL, *id = NULL, *outp = NULL, *db = NULL, *what;
	struct keyfile_key *enc = NULL, *enc_pub = NULL, *sign = NULL, *sign_pub = NULL, *storage = NULL;
	char path[4096], comment[128];
	int c, force = 0, r = 1;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'i': id = optarg; break;
		case 'o': outp = optarg; break;
		case 'b': db = optarg; break;
		case 'f': force = 1; break;
		case 'h': printf("usage: %s\n\n%s", keygen_usage, keygen_help); return 0;
		default: return cli_usage(keygen_usage, NULL);
		}
	}
	if (optind >= argc)
		return cli_usage(keygen_usage, "say what to generate: gateway, partner or match");
	what = argv[optind];
	if (strcmp(what, "gateway") == 0) {
		if (dir == NULL)
			return cli_missing(keygen_usage, "--dir");
		if (cli_mkdir(dir, 0700) != 0)
			return 1;
		if (keygen_pair(dir, "enc", KEYFILE_X25519_SECRET, "crossgate gateway encryption", force, &enc,
		    &enc_pub) != 0 ||
		    keygen_pair(dir, "sign", KEYFILE_ED25519_SECRET, "crossgate gateway signing", force, &sign,
		    &sign_pub) != 0)
			goto out;
		snprintf(path, sizeof(path), "%s/storage.key", dir);
		if (keygen_symmetric(path, KEYFILE_STORAGE, "crossgate gateway storage key: keep this file private",
		    force, &storage) != 0)
			goto out;
		if (db != NULL && keygen_audit(db, sign, enc_pub, sign_pub, storage) != 0)
			goto out;
		if (ctx->out)
			fprintf(ctx->out, "gateway keys written to %s (enc.key, enc.pub, sign.key, sign.pub, "
			    "storage.key)\n", dir);
	} else if (strcmp(what, "partner") == 0) {
		if (dir == NULL)
			return cli_missing(keygen_usage, "--dir");
		if (id == NULL)
			return cli_missing(keygen_usage, "--id");
		if (cli_mkdir(dir, 0700) != 0)
			return 1;
		snprintf(comment, sizeof(comment), "crossgate partner '%.64s' signing", id);
		if (keygen_pair(dir, "sign", KEYFILE_ED25519_SECRET, comment, force, NULL, &sign_pub) != 0)
			goto out;
		if (ctx->out) {
			char line[KEYFILE_LINE_MAX];
			if (keyfile_public_line(sign_pub, line, sizeof(line)) == 0)
				fprintf(ctx->out, "partner %s keys written to %s; its policy signing_key is:\n  %s\n",
				    id, dir, line);
		}
	} else if (strcmp(what, "match") == 0) {
		if (outp == NULL)
			return cli_missing(keygen_usage, "--out");
		if (keygen_symmetric(outp, KEYFILE_MATCH,
		    "crossgate match key: shared by the partners only, never given to the gateway", force, NULL) != 0)
			goto out;
		if (ctx->out)
			fprintf(ctx->out, "match key written to %s\n", outp);
	} else {
		return cli_usage(keygen_usage, "say what to generate: gateway, partner or match");
	}
	r = 0;
out:
	keyfile_free(enc);
	keyfile_free(enc_pub);
	keyfile_free(sign);
	keyfile_free(sign_pub);
	keyfile_free(storage);
	return r;
}

/* ---- policy ---------------------------------------------------------------- */

static const char policy_usage[] = "crossgate policy check FILE";

int
cmd_policy(int argc, char **argv, struct cli_ctx *ctx)
{
	struct policy *pol = NULL;
	struct policy_problems probs = { NULL, 0 };
	struct cg_err err;
	size_t i;
	char hex[65];

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: %s\n\nParse and validate a data-sharing policy; print every problem as\n"
		    "FILE:LINE:COLUMN: reason.  Exit 0 if the policy is valid.\n", policy_usage);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0)
		return cli_usage(policy_usage, NULL);
	cg_err_clear(&err);
	if (policy_load(argv[2], &pol, &probs, &err) != 0) {
		if (probs.n == 0)
			fprintf(stderr, "%s\n", err.msg);
		for (i = 0; i < probs.n; i++)
			fprintf(stderr, "%s\n", probs.msgs[i]);
		fprintf(stderr, "crossgate: %s: %zu problem%s\n", argv[2], probs.n ? probs.n : 1,
		    probs.n == 1 ? "" : "s");
		policy_problems_free(&probs);
		return 1;
	}
	sodium_bin2hex(hex, sizeof(hex), pol->hash, sizeof(pol->hash));
	if (ctx->out)
		fprintf(ctx->out, "%s: ok: %zu partners, %zu purposes, k = %u, sha256 %s\n", argv[2],
		    pol->npartners, pol->npurposes, pol->k, hex);
	policy_free(pol);
	policy_problems_free(&probs);
	return 0;
}

/* ---- agent ----------------------------------------------------------------- */

static const char agent_usage[] =
	"crossgate agent pack --policy FILE --partner ID --input CSV --out BATCH\n"
	"                     --match-key FILE --sign-key FILE --gateway-pub FILE [--strict]";

static const char agent_help[] =
	"Read the partner's CSV, check every row against the partner's schema in the\n"
	"policy, normalize and pseudonymize identifiers with the match key, drop users\n"
	"without 'match' consent, merge duplicate rows of one user (latest consent_at\n"
	"wins), seal each record, seal the batch key to the gateway, sign, and write\n"
	"one batch file.  Bad rows are reported as FILE:LINE:COLUMN (name): reason and\n"
	"skipped; with --strict any bad row fails the whole file and nothing is written.\n"
	"Identifiers and local user ids never leave this machine.\n";

static int
cli_load_policy(const char *path, struct policy **pol)
{
	struct cg_err err;

	cg_err_clear(&err);
	if (policy_load(path, pol, NULL, &err) != 0) {
		cli_error("%s (run 'crossgate policy check %s' for every problem)", err.msg, path);
		return -1;
	}
	return 0;
}

static int
cli_load_key(const char *path, enum keyfile_type type, struct keyfile_key **k)
{
	struct cg_err err;

	cg_err_clear(&err);
	if (keyfile_load(path, type, k, &err) != 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

int
cmd_agent(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' }, { "partner", required_argument, NULL, 'P' },
		{ "input", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
		{ "match-key", required_argument, NULL, 'm' }, { "sign-key", required_argument, NULL, 's' },
		{ "gateway-pub", required_argument, NULL, 'g' }, { "strict", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	struct pack_opts o;
	struct policy *pol = NULL;
	struct keyfile_key *match = NULL, *sign = NULL, *gw = NULL;
	const char *policy = NULL, *mp = NULL, *sp = NULL, *gp = NULL;
	struct cg_err err;
	char hex[33];
	int c, r = 1;

	memset(&o, 0, sizeof(o));
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': policy = optarg; break;
		case 'P': o.partner_id = optarg; break;
		case 'i': o.input = optarg; break;
		case 'o': o.output = optarg; break;
		case 'm': mp = optarg; break;
		case 's': sp = optarg; break;
		case 'g': gp = optarg; break;
		case 'S': o.strict = 1; break;
		case 'h': printf("usage: %s\n\n%s", agent_usage, agent_help); return 0;
		default: return cli_usage(agent_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "pack") != 0)
		return cli_usage(agent_usage, "unknown or missing agent command (pack)");
	if (policy == NULL) return cli_missing(agent_usage, "--policy");
	if (o.partner_id == NULL) return cli_missing(agent_usage, "--partner");
	if (o.input == NULL) return cli_missing(agent_usage, "--input");
	if (o.output == NULL) return cli_missing(agent_usage, "--out");
	if (mp == NULL) return cli_missing(agent_usage, "--match-key");
	if (sp == NULL) return cli_missing(agent_usage, "--sign-key");
	if (gp == NULL) return cli_missing(agent_usage, "--gateway-pub");
	if (cli_load_policy(policy, &pol) != 0 ||
	    cli_load_key(mp, KEYFILE_MATCH, &match) != 0 ||
	    cli_load_key(sp, KEYFILE_ED25519_SECRET, &sign) != 0 ||
	    cli_load_key(gp, KEYFILE_X25519_PUBLIC, &gw) != 0)
		goto out;
	o.pol = pol;
	o.match = match;
	o.sign = sign;
	o.gateway = gw;
	o.report = stderr;
	o.report_max = ctx->report_max ? ctx->report_max : 50;
	o.progress = ctx->out != NULL;
	cg_err_clear(&err);
	if (pack_csv(&o, &ctx->pack, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->pack.bad_rows > o.report_max)
		fprintf(stderr, "crossgate: ... %llu bad rows in all (first %llu shown)\n",
		    (unsigned long long)ctx->pack.bad_rows, (unsigned long long)o.report_max);
	sodium_bin2hex(hex, sizeof(hex), ctx->pack.batch_id, sizeof(ctx->pack.batch_id));
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows read, %llu bad, %llu duplicate rows merged, %llu users without "
		    "match consent dropped, %llu records packed into %s (batch %s)\n", o.input,
		    (unsigned long long)ctx->pack.rows, (unsigned long long)ctx->pack.bad_rows,
		    (unsigned long long)ctx->pack.duplicates, (unsigned long long)ctx->pack.no_match,
		    (unsigned long long)ctx->pack.packed, o.output, hex);
	r = 0;
out:
	policy_free(pol);
	keyfile_free(match);
	keyfile_free(sign);
	keyfile_free(gw);
	return r;
}

/* ---- gateway --------------------------------------------------------------- */

static const char gateway_usage[] =
	"crossgate gateway ingest --db DB --policy FILE --keys DIR BATCH...";

static const char gateway_help[] =
	"Ingest batch files.  Each batch is verified (partner's signature over the\n"
	"whole file, policy, gateway key), opened, checked record by record against\n"
	"the policy, and committed in one transaction: all of it or nothing.  A batch\n"
	"already committed is reported as a duplicate and changes nothing.  Every\n"
	"outcome is an audit event.  DIR holds the gateway keys of 'crossgate keygen\n"
	"gateway' (enc.key, sign.key, storage.key).  Exit 1 if any batch was rejected.\n";

struct cli_gw_keys {
	struct keyfile_key *enc, *sign, *storage;
};

static int
cli_load_gateway_keys(const char *dir, struct cli_gw_keys *k)
{
	char path[4096];

	memset(k, 0, sizeof(*k));
	snprintf(path, sizeof(path), "%s/enc.key", dir);
	if (cli_load_key(path, KEYFILE_X25519_SECRET, &k->enc) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/sign.key", dir);
	if (cli_load_key(path, KEYFILE_ED25519_SECRET, &k->sign) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/storage.key", dir);
	if (cli_load_key(path, KEYFILE_STORAGE, &k->storage) != 0)
		return -1;
	return 0;
}

static void
cli_gateway_keys_free(struct cli_gw_keys *k)
{
	keyfile_free(k->enc);
	keyfile_free(k->sign);
	keyfile_free(k->storage);
	memset(k, 0, sizeof(*k));
}

int
cmd_gateway(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "policy", required_argument, NULL, 'p' },
		{ "keys", required_argument, NULL, 'k' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	const char *db = NULL, *policy = NULL, *keys = NULL;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct ingest_keys ik;
	struct ingest_result res;
	struct cg_err err;
	int c, i, r = 1, failed = 0;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': policy = optarg; break;
		case 'k': keys = optarg; break;
		case 'h': printf("usage: %s\n\n%s", gateway_usage, gateway_help); return 0;
		default: return cli_usage(gateway_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "ingest") != 0)
		return cli_usage(gateway_usage, "unknown or missing gateway command (ingest)");
	if (db == NULL) return cli_missing(gateway_usage, "--db");
	if (policy == NULL) return cli_missing(gateway_usage, "--policy");
	if (keys == NULL) return cli_missing(gateway_usage, "--keys");
	if (optind + 1 >= argc)
		return cli_usage(gateway_usage, "no batch file given");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	cg_err_clear(&err);
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	ik.enc = k.enc;
	ik.storage = k.storage;
	for (i = optind + 1; i < argc; i++) {
		cg_err_clear(&err);
		if (ingest_batch_file(st, a, pol, &ik, argv[i], &res, &err) != 0) {
			cli_error("rejected: %s", err.msg);
			ctx->ingest_rejected++;
			failed = 1;
			continue;
		}
		if (res.duplicate) {
			ctx->ingest_duplicates++;
			if (ctx->out)
				fprintf(ctx->out, "%s: duplicate: batch already committed, nothing changed\n", argv[i]);
			continue;
		}
		ctx->ingested_records += res.records;
		if (ctx->out)
			fprintf(ctx->out, "%s: committed %llu records from partner %s\n", argv[i],
			    (unsigned long long)res.records, res.partner);
	}
	if (store_checkpoint(st, &err) != 0)
		cli_error("%s", err.msg);
	r = failed;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

/* ---- export ---------------------------------------------------------------- */

static const char export_usage[] =
	"crossgate export --db DB --policy FILE --keys DIR --out CSV [--purpose P]\n"
	"                 [--left ID --right ID]";

static const char export_help[] =
	"Join the partners' records on tokens and write an anonymized CSV of merged\n"
	"features: a fresh random pseudonym per row, quasi-identifiers generalized by\n"
	"the policy, classes smaller than the policy's k suppressed, no token and no\n"
	"identifier.  Only subjects whose records on both sides consent to the purpose\n"
	"(default 'analytics') are exported.  The export is an audit event.\n";

int
cmd_export(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "policy", required_argument, NULL, 'p' },
		{ "keys", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },
		{ "purpose", required_argument, NULL, 'u' }, { "left", required_argument, NULL, 'l' },
		{ "right", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
	const char *db = NULL, *policy = NULL, *keys = NULL;
	struct export_opts o;
	struct policy *pol = NULL;
	struct cli_gw_keys k = { 0 };
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int c, r = 1;

	memset(&o, 0, sizeof(o));
	o.purpose = "analytics";
	o.actor = "analyst";
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': policy = optarg; break;
		case 'k': keys = optarg; break;
		case 'o': o.out_path = optarg; break;
		case 'u': o.purpose = optarg; break;
		case 'l': o.left = optarg; break;
		case 'r': o.right = optarg; break;
		case 'h': printf("usage: %s\n\n%s", export_usage, export_help); return 0;
		default: return cli_usage(export_usage, NULL);
		}
	}
	if (optind != argc)
		return cli_usage(export_usage, "unexpected argument");
	if (db == NULL) return cli_missing(export_usage, "--db");
	if (policy == NULL) return cli_missing(export_usage, "--policy");
	if (keys == NULL) return cli_missing(export_usage, "--keys");
	if (o.out_path == NULL) return cli_missing(export_usage, "--out");
	if (cli_load_policy(policy, &pol) != 0 || cli_load_gateway_keys(keys, &k) != 0)
		goto out;
	o.pol = pol;
	o.storage = k.storage;
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, k.sign, &a, &err) != 0 ||
	    export_run(st, a, &o, &ctx->export, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "%s: %llu rows exported for '%s' (matched %llu, left out for consent %llu, "
		    "suppressed below k=%u %llu, ambiguous %llu, superseded %llu)\n", o.out_path,
		    (unsigned long long)ctx->export.exported, o.purpose, (unsigned long long)ctx->export.matched,
		    (unsigned long long)ctx->export.no_consent, ctx->export.k,
		    (unsigned long long)ctx->export.suppressed, (unsigned long long)ctx->export.ambiguous,
		    (unsigned long long)ctx->export.superseded);
	r = 0;
out:
	audit_free(a);
	store_close(st);
	cli_gateway_keys_free(&k);
	policy_free(pol);
	return r;
}

/* ---- audit ----------------------------------------------------------------- */

static const char audit_usage[] =
	"crossgate audit verify --db DB --pub GATEWAY_SIGN_PUB [--record-key GATEWAY_SIGN_KEY]";

static const char audit_help[] =
	"Recompute the audit log's Merkle tree (RFC 6962) from the stored events and\n"
	"check every signed checkpoint with the gateway's public key.  Exit 1, naming\n"
	"the first bad event or checkpoint, if anything was changed, removed,\n"
	"reordered or inserted.  Needs nothing secret.  With --record-key (the\n"
	"gateway's signing key) the outcome is itself appended to the log.\n";

int
cmd_audit(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'b' }, { "pub", required_argument, NULL, 'p' },
		{ "record-key", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 } };
	const char *db = NULL, *pubp = NULL, *recp = NULL;
	struct keyfile_key *pub = NULL, *rec = NULL;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err, logerr;
	struct stat sb;
	int c, r = 1, vr;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': db = optarg; break;
		case 'p': pubp = optarg; break;
		case 'r': recp = optarg; break;
		case 'h': printf("usage: %s\n\n%s", audit_usage, audit_help); return 0;
		default: return cli_usage(audit_usage, NULL);
		}
	}
	if (optind >= argc || strcmp(argv[optind], "verify") != 0)
		return cli_usage(audit_usage, "unknown or missing audit command (verify)");
	if (db == NULL) return cli_missing(audit_usage, "--db");
	if (pubp == NULL) return cli_missing(audit_usage, "--pub");
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	if (recp != NULL && cli_load_key(recp, KEYFILE_ED25519_SECRET, &rec) != 0)
		goto out;
	if (stat(db, &sb) != 0) {
		cli_error("cannot open database %s: %s", db, strerror(errno));
		goto out;
	}
	cg_err_clear(&err);
	if (store_open(db, 0, &st, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	vr = audit_verify(st, pub, &ctx->audit, &err);
	ctx->audit_ok = vr == 0;
	if (vr != 0)
		cli_error("audit log verification FAILED: %s", err.msg);
	else if (ctx->out)
		fprintf(ctx->out, "audit log ok: %llu events, %llu signed checkpoints; latest checkpoint:\n%s",
		    (unsigned long long)ctx->audit.events, (unsigned long long)ctx->audit.checkpoints,
		    ctx->audit.latest_checkpoint);
	if (rec != NULL) {
		Crossgate__AuditEvent ev;
		Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;

		cg_err_clear(&logerr);
		crossgate__audit_event__init(&ev);
		ev.actor = (char *)"auditor";
		ev.action = (char *)"audit-verify";
		ev.outcome = (char *)(vr == 0 ? "ok" : "failed");
		if (vr != 0)
			ev.reason = err.msg;
		crossgate__audit_event__counts_entry__init(&ce);
		ce.key = (char *)"events";
		ce.value = ctx->audit.events;
		ev.counts = &cep;
		ev.n_counts = 1;
		if (audit_open(st, rec, &a, &logerr) != 0 || audit_log(a, &ev, &logerr) != 0) {
			cli_error("cannot record the verification: %s", logerr.msg);
			goto out;
		}
	}
	r = vr == 0 ? 0 : 1;
out:
	audit_free(a);
	store_close(st);
	keyfile_free(pub);
	keyfile_free(rec);
	return r;
}

/* ---- main ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(int, char **, struct cli_ctx *);
	const char *what;
} commands[] = {
	{ "demo", cmd_demo, "run the whole pipeline on synthetic data (make demo)" },
	{ "keygen", cmd_keygen, "generate gateway, partner and match keys" },
	{ "policy", cmd_policy, "check a data-sharing policy file" },
	{ "agent", cmd_agent, "partner side: pack a CSV into a sealed, signed batch" },
	{ "gateway", cmd_gateway, "gateway side: ingest batch files" },
	{ "export", cmd_export, "join, anonymize and export merged features" },
	{ "audit", cmd_audit, "verify the audit log with the gateway's public key" },
};

static void
main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: crossgate COMMAND [OPTIONS]   (crossgate COMMAND --help for each)\n\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx;
	size_t i;

	if (sodium_init() < 0) {
		cli_error("cannot initialize libsodium");
		return 1;
	}
	if (argc < 2) {
		main_usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = stdout;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1, &ctx);
	cli_error("unknown command '%s'", argv[1]);
	main_usage(stderr);
	return CLI_USAGE;
}

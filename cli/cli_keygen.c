/* cli_keygen.c - crossgate keygen */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "cli/cli.h"
#include "cli/cliopt.h"
#include "crypto/keyfile.h"
#include "audit/audit.h"
#include "store/store.h"

/* ---- keygen ---------------------------------------------------------------- */

static const char keygen_usage[] =
	"crossgate keygen gateway --dir DIR [--db DB] [--force]\n"
	"       crossgate keygen gateway --rotate --dir DIR --db DB\n"
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
	"            --rotate                replace the signing key: DB's audit log gets a\n"
	"                                    key-rotate event (both public keys and ids) signed\n"
	"                                    by the old key, later checkpoints are signed by the\n"
	"                                    new one; the old files are kept as sign-<id>.key\n"
	"                                    and .pub (0600/0644).  Stop the gateway first.\n"
	"                                    Auditors keep verifying with the first sign.pub.\n"
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
keygen_audit(const char *db, const struct keyfile_key *sign, const struct keyfile_key *enc,
    const struct keyfile_key *storage)
{
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	int r = -1;

	cg_err_clear(&err);
	if (store_open(db, STORE_OPEN_CREATE, &st, &err) != 0 || audit_open(st, sign, &a, &err) != 0 ||
	    audit_log_keys(a, "keygen", enc, storage, &err) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		cli_error("%s", err.msg[0] ? err.msg : "cannot record the key generation");
	audit_free(a);
	store_close(st);
	return r;
}

/* Move path to `to` without replacing anything there (link, then unlink). */
static int
keygen_move(const char *from, const char *to)
{
	if (link(from, to) != 0) {
		cli_error("cannot keep %s as %s: %s", from, to, strerror(errno));
		return -1;
	}
	if (unlink(from) != 0) {
		cli_error("cannot remove %s: %s", from, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Rotate the gateway's signing key.  The new key is written under its id
 * first; the rotation commits in the log; only then do the files change
 * places, so that a failure leaves the old key in force and a crash between
 * the two leaves both keys on disk, named by id.
 */
static int
keygen_rotate(const char *dir, const char *db, struct cli_ctx *ctx)
{
	struct keyfile_key *old = NULL, *next = NULL, *next_pub = NULL;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	char path[4096], staged_key[4096], staged_pub[4096], kept[4096], hex[2][2 * KEYFILE_ID_LEN + 1];
	int r = -1, staged = 0;

	cg_err_clear(&err);
	snprintf(path, sizeof(path), "%s/sign.key", dir);
	if (cli_load_key(path, KEYFILE_ED25519_SECRET, &old) != 0)
		goto out;
	if (keyfile_generate(KEYFILE_ED25519_SECRET, &next, &err) != 0 || keyfile_public_of(next, &next_pub, &err) != 0)
		goto fail;
	keyfile_id_hex(old->id, hex[0]);
	keyfile_id_hex(next->id, hex[1]);
	snprintf(staged_key, sizeof(staged_key), "%s/sign-%s.key", dir, hex[1]);
	snprintf(staged_pub, sizeof(staged_pub), "%s/sign-%s.pub", dir, hex[1]);
	if (keyfile_write(staged_key, next, "crossgate gateway signing secret key: keep this file private", 0, &err) != 0)
		goto fail;
	staged = 1;
	if (keyfile_write(staged_pub, next_pub, "crossgate gateway signing public key", 0, &err) != 0)
		goto fail;
	if (store_open(db, 0, &st, &err) != 0 || audit_open(st, old, &a, &err) != 0 || audit_rotate(a, next, &err) != 0)
		goto fail;
	staged = 0;
	/* Committed: the old files are kept under the old id, the new ones take their names. */
	snprintf(kept, sizeof(kept), "%s/sign-%s.key", dir, hex[0]);
	if (keygen_move(path, kept) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/sign.pub", dir);
	snprintf(kept, sizeof(kept), "%s/sign-%s.pub", dir, hex[0]);
	if (keygen_move(path, kept) != 0 || keygen_move(staged_pub, path) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/sign.key", dir);
	if (keygen_move(staged_key, path) != 0)
		goto out;
	if (ctx->out)
		fprintf(ctx->out, "gateway signing key rotated from %s to %s (audit event %llu, signed by both); the "
		    "old key files are %s/sign-%s.key and .pub\n", hex[0], hex[1],
		    (unsigned long long)(audit_size(a) - 1), dir, hex[0]);
	r = 0;
	goto out;
fail:
	cli_error("key rotation failed: %s", err.msg);
out:
	if (staged) {
		unlink(staged_key);
		unlink(staged_pub);
	}
	audit_free(a);
	store_close(st);
	keyfile_free(old);
	keyfile_free(next);
	keyfile_free(next_pub);
	return r;
}

int
cmd_keygen(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *dir = NULL, *id = NULL, *outp = NULL, *db = NULL, *what;
	struct keyfile_key *enc = NULL, *enc_pub = NULL, *sign = NULL, *sign_pub = NULL, *storage = NULL;
	char path[4096], comment[128];
	int force = 0, rotate = 0, r = 1, argi;
	const struct cliopt opts[] = { CLIOPT_STR("dir", &dir), CLIOPT_STR("id", &id), CLIOPT_STR("out", &outp),
		CLIOPT_STR("db", &db), CLIOPT_FLAG("force", &force), CLIOPT_FLAG("rotate", &rotate), CLIOPT_END };

	if (cliopt_parse(argc, argv, keygen_usage, keygen_help, opts, &argi, &r))
		return r;
	r = 1;
	if (argi >= argc)
		return cli_usage(keygen_usage, "say what to generate: gateway, partner or match");
	what = argv[argi];
	if (rotate && strcmp(what, "gateway") != 0)
		return cli_usage(keygen_usage, "--rotate is for the gateway's signing key");
	if (rotate) {
		if (dir == NULL)
			return cli_missing(keygen_usage, "--dir");
		if (db == NULL)
			return cli_missing(keygen_usage, "--db");
		if (force)
			return cli_usage(keygen_usage, "--rotate never overwrites: --force does not apply");
		return keygen_rotate(dir, db, ctx) == 0 ? 0 : 1;
	}
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
		if (db != NULL && keygen_audit(db, sign, enc_pub, storage) != 0)
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


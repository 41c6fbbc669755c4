/* test_keyfile.c - key generation, key files and pasted key lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/keyfile.h"
#include "tests/unit/cgtest.h"

static char tmpdir[] = "/tmp/cg-test-keyfile-XXXXXX";

static void
tmp_path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static int
write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

static int
keys_equal(const struct keyfile_key *a, const struct keyfile_key *b)
{
	return a->type == b->type && a->key_len == b->key_len &&
	    memcmp(a->id, b->id, KEYFILE_ID_LEN) == 0 &&
	    sodium_memcmp(a->key, b->key, a->key_len) == 0 &&
	    memcmp(a->pub, b->pub, sizeof(a->pub)) == 0;
}

static void
test_generate_write_load(void)
{
	static const enum keyfile_type types[] = {
		KEYFILE_X25519_SECRET, KEYFILE_ED25519_SECRET, KEYFILE_MATCH, KEYFILE_STORAGE,
	};
	struct keyfile_key *k = NULL, *back = NULL, *pub = NULL, *pubback = NULL;
	struct cg_err err = { 0 };
	char path[256], ppath[512];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.key", tmpdir, keyfile_type_name(types[i]));
		CHECK_EQ_INT(keyfile_generate(types[i], &k, &err), 0);
		if (k == NULL)
			continue;
		CHECK_EQ_INT(k->type, types[i]);
		CHECK_EQ_INT(k->key_len, types[i] == KEYFILE_ED25519_SECRET ? 64 : 32);
		CHECK_EQ_INT(keyfile_write(path, k, "a test key", 0, &err), 0);
		CHECK_EQ_INT(stat(path, &st), 0);
		CHECK_EQ_INT(st.st_mode & 07777, 0600);
		CHECK_EQ_INT(keyfile_load(path, types[i], &back, &err), 0);
		CHECK(back != NULL && keys_equal(k, back));

		if (types[i] == KEYFILE_X25519_SECRET || types[i] == KEYFILE_ED25519_SECRET) {
			CHECK_EQ_INT(keyfile_public_of(k, &pub, &err), 0);
			CHECK(pub != NULL);
			if (pub != NULL) {
				CHECK_EQ_INT(pub->type, types[i] + 1);
				CHECK_EQ_INT(pub->key_len, 32);
				CHECK(memcmp(pub->key, k->pub, 32) == 0);
				CHECK(memcmp(pub->id, k->id, KEYFILE_ID_LEN) == 0);
				snprintf(ppath, sizeof(ppath), "%s.pub", path);
				CHECK_EQ_INT(keyfile_write(ppath, pub, NULL, 0, &err), 0);
				CHECK_EQ_INT(stat(ppath, &st), 0);
				CHECK_EQ_INT(st.st_mode & 07777, 0644);
				/* A public file may be world-readable. */
				CHECK_EQ_INT(keyfile_load(ppath, pub->type, &pubback, &err), 0);
				CHECK(pubback != NULL && keys_equal(pub, pubback));
				unlink(ppath);
			}
		} else {
			CHECK_EQ_INT(keyfile_public_of(k, &pub, &err), CG_ERR_ARG);
			CHECK(pub == NULL);
			CHECK_CONTAINS(err.msg, "has no public half");
		}
		/* Under secmem, the key is gone after free; here only check it does not crash. */
		keyfile_free(pubback);
		keyfile_free(pub);
		keyfile_free(back);
		keyfile_free(k);
		pubback = pub = back = k = NULL;
		unlink(path);
	}

	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_PUBLIC, &k, &err), CG_ERR_ARG);
	CHECK(k == NULL);
	CHECK_CONTAINS(err.msg, "can only generate a secret key");
	keyfile_free(NULL);
}

static void
test_derived_halves(void)
{
	struct keyfile_key *k = NULL;
	struct cg_err err = { 0 };
	unsigned char pk[32];

	/* The public half is the real public key of the secret key. */
	CHECK_EQ_INT(keyfile_generate(KEYFILE_X25519_SECRET, &k, &err), 0);
	if (k != NULL) {
		CHECK_EQ_INT(crypto_scalarmult_base(pk, k->key), 0);
		CHECK(memcmp(pk, k->pub, 32) == 0);
	}
	keyfile_free(k);
	k = NULL;
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &k, &err), 0);
	if (k != NULL) {
		CHECK_EQ_INT(crypto_sign_ed25519_sk_to_pk(pk, k->key), 0);
		CHECK(memcmp(pk, k->pub, 32) == 0);
	}
	keyfile_free(k);
}

static void
test_public_line(void)
{
	struct keyfile_key *k = NULL, *pub = NULL, *back = NULL;
	struct cg_err err = { 0 };
	char line[KEYFILE_LINE_MAX], idhex[2 * KEYFILE_ID_LEN + 1], buf[KEYFILE_LINE_MAX + 8];

	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &k, &err), 0);
	if (k == NULL)
		return;
	CHECK_EQ_INT(keyfile_public_of(k, &pub, &err), 0);
	if (pub == NULL)
		goto out;
	CHECK_EQ_INT(keyfile_public_line(pub, line, sizeof(line)), 0);
	keyfile_id_hex(pub->id, idhex);
	CHECK_EQ_INT(strlen(idhex), 16);
	CHECK(strncmp(line, "ed25519-public ", 15) == 0);
	CHECK(strncmp(line + 15, idhex, 16) == 0);
	CHECK_EQ_INT(strlen(line), 15 + 16 + 1 + 44);

	CHECK_EQ_INT(keyfile_parse_public_line(line, strlen(line), KEYFILE_ED25519_PUBLIC, &back,
	    &err), 0);
	CHECK(back != NULL && keys_equal(pub, back));
	keyfile_free(back);
	back = NULL;

	/*
	 * libsodium 1.0.18 decodes any byte >= 0x80 as '/': a key line with
	 * such a byte must still be rejected, so that a key has one spelling.
	 */
	snprintf(buf, sizeof(buf), "%s", line);
	buf[15 + 16 + 1 + 5] = (char)0xc7;
	CHECK_EQ_INT(keyfile_parse_public_line(buf, strlen(buf), KEYFILE_ED25519_PUBLIC, &back,
	    &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not valid base64");
	CHECK(back == NULL);

	/* As pasted: with a newline and extra spaces. */
	snprintf(buf, sizeof(buf), "  %s \r\n", line);
	CHECK_EQ_INT(keyfile_parse_public_line(buf, strlen(buf), KEYFILE_ED25519_PUBLIC, &back,
	    &err), 0);
	CHECK(back != NULL && keys_equal(pub, back));
	keyfile_free(back);
	back = NULL;

	CHECK_EQ_INT(keyfile_parse_public_line(line, strlen(line), KEYFILE_X25519_PUBLIC, &back,
	    &err), CG_ERR_FORMAT);
	CHECK(back == NULL);
	CHECK_CONTAINS(err.msg, "key is a ed25519-public, expected a x25519-public");

	CHECK_EQ_INT(keyfile_parse_public_line(line, strlen(line), KEYFILE_ED25519_SECRET, &back,
	    &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "only public keys");

	/* A secret key never formats as a public line. */
	CHECK_EQ_INT(keyfile_public_line(k, line, sizeof(line)), CG_ERR_ARG);
	CHECK_EQ_INT(line[0], '\0');
	CHECK_EQ_INT(keyfile_public_line(pub, line, 20), CG_ERR_LIMIT);

	memset(buf, 'a', sizeof(buf));
	CHECK_EQ_INT(keyfile_parse_public_line(buf, KEYFILE_LINE_MAX + 1, KEYFILE_ED25519_PUBLIC,
	    &back, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "longer than 256 bytes");

	CHECK_EQ_INT(keyfile_parse_public_line("", 0, KEYFILE_ED25519_PUBLIC, &back, &err),
	    CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "key line must be");
out:
	keyfile_free(pub);
	keyfile_free(k);
}

/* A key line with one field replaced, for the rejection tests. */
static void
check_reject(const char *name, const char *text, enum keyfile_type expect, int code,
    const char *msg)
{
	struct keyfile_key *k = NULL;
	struct cg_err err = { 0 };
	char path[512];

	tmp_path(path, sizeof(path), name);
	CHECK_EQ_INT(write_text(path, text, 0600), 0);
	CHECK_EQ_INT(keyfile_load(path, expect, &k, &err), code);
	CHECK(k == NULL);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, msg);
	keyfile_free(k);
	unlink(path);
}

static void
test_rejections(void)
{
	struct keyfile_key *k = NULL, *back = NULL;
	struct cg_err err = { 0 };
	char line[KEYFILE_LINE_MAX], text[2 * KEYFILE_FILE_MAX], path[512], *b64;
	char idhex[2 * KEYFILE_ID_LEN + 1];
	size_t off;

	CHECK_EQ_INT(keyfile_generate(KEYFILE_X25519_SECRET, &k, &err), 0);
	if (k == NULL)
		return;
	/* The secret line, built the way the writer does. */
	keyfile_id_hex(k->id, idhex);
	off = (size_t)snprintf(line, sizeof(line), "x25519-secret %s ", idhex);
	sodium_bin2base64(line + off, sizeof(line) - off, k->key, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	b64 = line + off;

	/* The reference: it loads, with comments and blank lines around it. */
	snprintf(text, sizeof(text), "# gateway key\n\n%s\n# end\n", line);
	tmp_path(path, sizeof(path), "good.key");
	CHECK_EQ_INT(write_text(path, text, 0600), 0);
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_X25519_SECRET, &back, &err), 0);
	CHECK(back != NULL && keys_equal(k, back));
	keyfile_free(back);
	back = NULL;

	/* Group-readable secret: refused with the fix to run. */
	CHECK_EQ_INT(chmod(path, 0644), 0);
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_X25519_SECRET, &back, &err), CG_ERR_PERM);
	CHECK(back == NULL);
	CHECK_CONTAINS(err.msg, "accessible by group or others (mode 0644)");
	CHECK_CONTAINS(err.msg, "chmod 600");
	CHECK_CONTAINS(err.msg, path);
	CHECK_EQ_INT(chmod(path, 0660), 0);
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_X25519_SECRET, &back, &err), CG_ERR_PERM);
	CHECK_CONTAINS(err.msg, "mode 0660");
	/* Mode 0600 but another user's file: refused too (only root can give a file away, so only as root). */
	CHECK_EQ_INT(chmod(path, 0600), 0);
	if (geteuid() == 0 && chown(path, 4242, (gid_t)-1) == 0) {
		CHECK_EQ_INT(keyfile_load(path, KEYFILE_X25519_SECRET, &back, &err), CG_ERR_PERM);
		CHECK(back == NULL);
		CHECK_CONTAINS(err.msg, "is owned by uid 4242, not by the user running crossgate (uid 0); run: chown 0");
	}
	unlink(path);

	/* Corrupt id: one hex digit changed. */
	snprintf(text, sizeof(text), "%s\n", line);
	text[14] = text[14] == '0' ? '1' : '0';
	check_reject("id.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: key id does not match the key: file corrupt");

	/*
	 * Corrupt key byte: base64 still valid, the id no longer matches.  Not
	 * the first character: it holds bits of byte 0, some of which X25519
	 * clamps away, so the id stayed the same one time in 32.
	 */
	snprintf(text, sizeof(text), "# c\n%s\n", line);
	text[4 + off + 8] = text[4 + off + 8] == 'A' ? 'B' : 'A';
	check_reject("keybyte.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":2: key id does not match the key: file corrupt");

	snprintf(text, sizeof(text), "x25519-secret %.15sg %s\n", idhex, b64);
	check_reject("hexid.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: key id must be 16 hex digits");
	snprintf(text, sizeof(text), "x25519-secret %.14s %s\n", idhex, b64);
	check_reject("shortid.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: key id must be 16 hex digits");

	snprintf(text, sizeof(text), "%s\n", line);
	check_reject("type.key", text, KEYFILE_ED25519_SECRET, CG_ERR_FORMAT,
	    ":1: key is a x25519-secret, expected a ed25519-secret");
	snprintf(text, sizeof(text), "x448-secret %s %s\n", idhex, b64);
	check_reject("unknown.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: unknown key type");

	snprintf(text, sizeof(text), "%s\n", line);
	text[off + 5] = '*';
	check_reject("b64.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: key is not valid base64");
	snprintf(text, sizeof(text), "x25519-secret %s %.40s\n", idhex, b64);
	check_reject("short.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: wrong key length for a x25519-secret (expected 32 bytes)");

	snprintf(text, sizeof(text), "%s\n# second\n%s\n", line, line);
	check_reject("two.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":3: more than one key line (the key is on line 1)");
	snprintf(text, sizeof(text), "%s extra\n", line);
	check_reject("garbage.key", text, KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ":1: trailing garbage after the key");
	check_reject("empty.key", "# only a comment\n\n", KEYFILE_X25519_SECRET, CG_ERR_FORMAT,
	    ": no key line");

	memset(text, 'x', KEYFILE_LINE_MAX + 1);
	snprintf(text + KEYFILE_LINE_MAX + 1, sizeof(text) - KEYFILE_LINE_MAX - 1, "\n%s\n", line);
	text[0] = '#';
	check_reject("longline.key", text, KEYFILE_X25519_SECRET, CG_ERR_LIMIT,
	    ":1: line is longer than 256 bytes");

	off = 0;
	while (off <= KEYFILE_FILE_MAX)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "# padding comment\n");
	snprintf(text + off, sizeof(text) - off, "%s\n", line);
	check_reject("big.key", text, KEYFILE_X25519_SECRET, CG_ERR_LIMIT,
	    "key file is larger than 4096 bytes");

	tmp_path(path, sizeof(path), "missing.key");
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_X25519_SECRET, &back, &err), CG_ERR_IO);
	CHECK(back == NULL);
	CHECK_CONTAINS(err.msg, "cannot open key file ");
	CHECK_CONTAINS(err.msg, "missing.key: No such file or directory");

	CHECK_EQ_INT(keyfile_load(tmpdir, KEYFILE_X25519_SECRET, &back, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "is not a regular file");

	/* In-memory parse with a NUL inside. */
	snprintf(text, sizeof(text), "%s\n", line);
	text[3] = '\0';
	CHECK_EQ_INT(keyfile_parse("mem", text, strlen(line) + 1, KEYFILE_X25519_SECRET, &back,
	    &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "mem:1: NUL byte in key line");

	sodium_memzero(text, sizeof(text));
	sodium_memzero(line, sizeof(line));
	keyfile_free(k);
}

static void
test_ed25519_consistency(void)
{
	struct keyfile_key *k = NULL, *back = NULL;
	struct cg_err err = { 0 };
	char text[KEYFILE_LINE_MAX], idhex[2 * KEYFILE_ID_LEN + 1];
	size_t off;

	/* A secret key whose stored public half is not the seed's: refused. */
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &k, &err), 0);
	if (k == NULL)
		return;
	k->key[40] ^= 1;
	keyfile_id_hex(k->id, idhex);
	off = (size_t)snprintf(text, sizeof(text), "ed25519-secret %s ", idhex);
	sodium_bin2base64(text + off, sizeof(text) - off, k->key, 64,
	    sodium_base64_VARIANT_ORIGINAL);
	CHECK_EQ_INT(keyfile_parse("mem", text, strlen(text), KEYFILE_ED25519_SECRET, &back, &err),
	    CG_ERR_FORMAT);
	CHECK(back == NULL);
	CHECK_CONTAINS(err.msg, "mem:1: ed25519 secret key does not match its public half");
	sodium_memzero(text, sizeof(text));
	keyfile_free(k);
}

static void
test_overwrite(void)
{
	struct keyfile_key *a = NULL, *b = NULL, *back = NULL;
	struct cg_err err = { 0 };
	char path[512];
	struct stat st;

	tmp_path(path, sizeof(path), "store.key");
	CHECK_EQ_INT(keyfile_generate(KEYFILE_STORAGE, &a, &err), 0);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_STORAGE, &b, &err), 0);
	if (a == NULL || b == NULL)
		goto out;
	CHECK_EQ_INT(keyfile_write(path, a, NULL, 0, &err), 0);
	CHECK_EQ_INT(keyfile_write(path, b, NULL, 0, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "store.key exists; refusing to overwrite");
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_STORAGE, &back, &err), 0);
	CHECK(back != NULL && keys_equal(a, back));
	keyfile_free(back);
	back = NULL;

	CHECK_EQ_INT(keyfile_write(path, b, NULL, 1, &err), 0);
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0600);
	CHECK_EQ_INT(keyfile_load(path, KEYFILE_STORAGE, &back, &err), 0);
	CHECK(back != NULL && keys_equal(b, back));
	keyfile_free(back);
	back = NULL;

	CHECK_EQ_INT(keyfile_write(path, b, "two\nlines", 1, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "comment must be one line");

	tmp_path(path, sizeof(path), "no-such-dir/x.key");
	CHECK_EQ_INT(keyfile_write(path, b, NULL, 0, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "cannot create a temporary file next to");
out:
	keyfile_free(a);
	keyfile_free(b);
}

/* Every file the tests made is gone, temporary files included. */
static void
cleanup(void)
{
	char path[512];
	const char *names[] = { "store.key", "good.key", NULL };
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		tmp_path(path, sizeof(path), names[i]);
		unlink(path);
	}
	CHECK_EQ_INT(rmdir(tmpdir), 0);
	if (errno == ENOTEMPTY)
		fprintf(stderr, "%s: left-over files\n", tmpdir);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_generate_write_load();
	test_derived_halves();
	test_public_line();
	test_rejections();
	test_ed25519_consistency();
	test_overwrite();
	cleanup();
	CGT_DONE();
}

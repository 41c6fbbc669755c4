/* keyfile.c - see keyfile.h */
#include "crypto/keyfile.h"
#include "base/b64.h"
#include "base/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "base/secmem.h"

#define KEYFILE_ID_CONTEXT "crossgate key id v1"
#define KEYFILE_B64 sodium_base64_VARIANT_ORIGINAL

struct keyfile_type_info {
	enum keyfile_type type;
	const char *name;
	size_t key_len;
	int secret;
	int pair;                 /* one half of a key pair: has `pub` */
	enum keyfile_type public_type;
};

static const struct keyfile_type_info keyfile_types[] = {
	{ KEYFILE_X25519_SECRET,  "x25519-secret",  32, 1, 1, KEYFILE_X25519_PUBLIC },
	{ KEYFILE_X25519_PUBLIC,  "x25519-public",  32, 0, 1, KEYFILE_X25519_PUBLIC },
	{ KEYFILE_ED25519_SECRET, "ed25519-secret", 64, 1, 1, KEYFILE_ED25519_PUBLIC },
	{ KEYFILE_ED25519_PUBLIC, "ed25519-public", 32, 0, 1, KEYFILE_ED25519_PUBLIC },
	{ KEYFILE_MATCH,          "match-key",      32, 1, 0, KEYFILE_MATCH },
	{ KEYFILE_STORAGE,        "storage-key",    32, 1, 0, KEYFILE_STORAGE },
};

static const struct keyfile_type_info *
keyfile_info(enum keyfile_type type)
{
	size_t i;

	for (i = 0; i < sizeof(keyfile_types) / sizeof(keyfile_types[0]); i++)
		if (keyfile_types[i].type == type)
			return &keyfile_types[i];
	return NULL;
}

static const struct keyfile_type_info *
keyfile_info_by_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(keyfile_types) / sizeof(keyfile_types[0]); i++)
		if (strlen(keyfile_types[i].name) == len &&
		    memcmp(keyfile_types[i].name, name, len) == 0)
			return &keyfile_types[i];
	return NULL;
}

const char *
keyfile_type_name(enum keyfile_type type)
{
	const struct keyfile_type_info *info = keyfile_info(type);

	return info != NULL ? info->name : "unknown";
}

void
keyfile_id_hex(const unsigned char id[KEYFILE_ID_LEN], char out[2 * KEYFILE_ID_LEN + 1])
{
	sodium_bin2hex(out, 2 * KEYFILE_ID_LEN + 1, id, KEYFILE_ID_LEN);
}

/*
 * Both halves of a pair hash the public type's enum value, so a secret key and
 * its public key share the id; a symmetric key's id is a MAC under the key, so
 * the id reveals nothing about it.
 */
static int
keyfile_compute_id(const struct keyfile_type_info *info, const unsigned char *key,
    const unsigned char pub[32], unsigned char id[KEYFILE_ID_LEN])
{
	crypto_generichash_state st;
	unsigned char type_byte = (unsigned char)info->public_type;

	if (info->pair) {
		if (crypto_generichash_init(&st, NULL, 0, KEYFILE_ID_LEN) != 0 ||
		    crypto_generichash_update(&st, (const unsigned char *)KEYFILE_ID_CONTEXT,
		    strlen(KEYFILE_ID_CONTEXT)) != 0 ||
		    crypto_generichash_update(&st, &type_byte, 1) != 0 ||
		    crypto_generichash_update(&st, pub, 32) != 0 ||
		    crypto_generichash_final(&st, id, KEYFILE_ID_LEN) != 0)
			return CG_ERR_INTERNAL;
		return 0;
	}
	if (crypto_generichash(id, KEYFILE_ID_LEN, (const unsigned char *)KEYFILE_ID_CONTEXT,
	    strlen(KEYFILE_ID_CONTEXT), key, info->key_len) != 0)
		return CG_ERR_INTERNAL;
	return 0;
}

/* A key struct with room for key bytes, in secmem for secret types. */
static struct keyfile_key *
keyfile_alloc(const struct keyfile_type_info *info)
{
	struct keyfile_key *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->type = info->type;
	k->key_len = info->key_len;
	k->key = info->secret ? secmem_alloc(info->key_len) : calloc(1, info->key_len);
	if (k->key == NULL) {
		free(k);
		return NULL;
	}
	return k;
}

void
keyfile_free(struct keyfile_key *key)
{
	const struct keyfile_type_info *info;

	if (key == NULL)
		return;
	info = keyfile_info(key->type);
	if (key->key != NULL) {
		if (info == NULL || info->secret) {
			secmem_free(key->key, key->key_len);
		} else {
			sodium_memzero(key->key, key->key_len);
			free(key->key);
		}
	}
	sodium_memzero(key, sizeof(*key));
	free(key);
}

/*
 * Fill in `pub` from the key bytes and check that the secret key is internally
 * consistent: an Ed25519 secret key carries its public key, which must be the
 * one its seed yields.
 */
static int
keyfile_derive_pub(struct keyfile_key *k, struct cg_err *err)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk = NULL;
	int r = CG_ERR_INTERNAL;

	switch (k->type) {
	case KEYFILE_X25519_SECRET:
		if (crypto_scalarmult_base(k->pub, k->key) != 0) {
			r = cg_err_set(err, CG_ERR_FORMAT, "x25519 secret key is invalid: file corrupt");
			goto out;
		}
		break;
	case KEYFILE_ED25519_SECRET:
		if ((sk = secmem_alloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
			r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (crypto_sign_seed_keypair(pk, sk, k->key) != 0) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "cannot derive the ed25519 public key");
			goto out;
		}
		if (sodium_memcmp(pk, k->key + 32, 32) != 0) {
			r = cg_err_set(err, CG_ERR_FORMAT,
			    "ed25519 secret key does not match its public half: file corrupt");
			goto out;
		}
		memcpy(k->pub, pk, 32);
		break;
	case KEYFILE_X25519_PUBLIC:
	case KEYFILE_ED25519_PUBLIC:
		memcpy(k->pub, k->key, 32);
		break;
	case KEYFILE_MATCH:
	case KEYFILE_STORAGE:
		break;
	}
	r = 0;
out:
	secmem_free(sk, crypto_sign_SECRETKEYBYTES);
	return r;
}

int
keyfile_generate(enum keyfile_type type, struct keyfile_key **out, struct cg_err *err)
{
	const struct keyfile_type_info *info = keyfile_info(type);
	struct keyfile_key *k = NULL;
	int r;

	*out = NULL;
	if (info == NULL || !info->secret) {
		r = cg_err_set(err, CG_ERR_ARG,
		    "can only generate a secret key (its public key comes from it)");
		goto out;
	}
	if ((k = keyfile_alloc(info)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	switch (type) {
	case KEYFILE_X25519_SECRET:
		if (crypto_box_keypair(k->pub, k->key) != 0) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "x25519 key generation failed");
			goto out;
		}
		break;
	case KEYFILE_ED25519_SECRET:
		if (crypto_sign_keypair(k->pub, k->key) != 0) {
			r = cg_err_set(err, CG_ERR_INTERNAL, "ed25519 key generation failed");
			goto out;
		}
		break;
	default:
		randombytes_buf(k->key, k->key_len);
		break;
	}
	if ((r = keyfile_compute_id(info, k->key, k->pub, k->id)) != 0) {
		cg_err_set(err, r, "cannot compute the key id");
		goto out;
	}
	*out = k;
	k = NULL; /* transferred */
	r = 0;
out:
	keyfile_free(k);
	return r;
}

int
keyfile_public_of(const struct keyfile_key *secret, struct keyfile_key **out, struct cg_err *err)
{
	const struct keyfile_type_info *info = keyfile_info(secret->type), *pinfo;
	struct keyfile_key *k = NULL;
	int r;

	*out = NULL;
	if (info == NULL || !info->secret || !info->pair) {
		r = cg_err_set(err, CG_ERR_ARG, "a %s has no public half",
		    keyfile_type_name(secret->type));
		goto out;
	}
	pinfo = keyfile_info(info->public_type);
	if ((k = keyfile_alloc(pinfo)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(k->key, secret->pub, 32);
	memcpy(k->pub, secret->pub, 32);
	memcpy(k->id, secret->id, KEYFILE_ID_LEN);
	*out = k;
	k = NULL; /* transferred */
	r = 0;
out:
	keyfile_free(k);
	return r;
}

/* "<type> <id> <base64>" without a newline; the text holds the key: callers wipe it. */
static int
keyfile_format_line(const struct keyfile_key *key, char *out, size_t out_size)
{
	const struct keyfile_type_info *info = keyfile_info(key->type);
	char idhex[2 * KEYFILE_ID_LEN + 1];
	size_t nlen, b64len;

	if (out_size > 0)
		out[0] = '\0';
	if (info == NULL || key->key == NULL || key->key_len != info->key_len)
		return CG_ERR_ARG;
	nlen = strlen(info->name);
	b64len = sodium_base64_ENCODED_LEN(info->key_len, KEYFILE_B64);  /* counts the NUL */
	if (out_size < nlen + 1 + 2 * KEYFILE_ID_LEN + 1 + b64len)
		return CG_ERR_LIMIT;
	keyfile_id_hex(key->id, idhex);
	memcpy(out, info->name, nlen);
	out[nlen] = ' ';
	memcpy(out + nlen + 1, idhex, 2 * KEYFILE_ID_LEN);
	out[nlen + 1 + 2 * KEYFILE_ID_LEN] = ' ';
	sodium_bin2base64(out + nlen + 2 + 2 * KEYFILE_ID_LEN, b64len, key->key, key->key_len,
	    KEYFILE_B64);
	return 0;
}

int
keyfile_public_line(const struct keyfile_key *pub, char *out, size_t out_size)
{
	const struct keyfile_type_info *info = keyfile_info(pub->type);

	if (out_size > 0)
		out[0] = '\0';
	if (info == NULL || info->secret)
		return CG_ERR_ARG;
	return keyfile_format_line(pub, out, out_size);
}

static int
keyfile_is_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

static int
keyfile_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Next whitespace-separated field of [*pos, end). */
static void
keyfile_next_field(const char *line, size_t len, size_t *pos, size_t *start, size_t *flen)
{
	while (*pos < len && keyfile_is_space(line[*pos]))
		(*pos)++;
	*start = *pos;
	while (*pos < len && !keyfile_is_space(line[*pos]))
		(*pos)++;
	*flen = *pos - *start;
}

/*
 * Parse one key line (no newline) of any type; the message is a bare reason for
 * the caller to prefix with where the line came from.  The base64 text of a
 * secret key stays in the caller's buffer, which the caller wipes.
 */
static int
keyfile_parse_line(const char *line, size_t len, enum keyfile_type expect,
    struct keyfile_key **out, struct cg_err *err)
{
	const struct keyfile_type_info *info, *want = keyfile_info(expect);
	struct keyfile_key *k = NULL;
	unsigned char id[KEYFILE_ID_LEN];
	size_t pos = 0, ts, tl, is, il, bs, bl, rs, rl, bin_len = 0;
	int r;

	*out = NULL;
	if (want == NULL) {
		r = cg_err_set(err, CG_ERR_ARG, "unknown expected key type");
		goto out;
	}
	if (memchr(line, '\0', len) != NULL) {
		r = cg_err_set(err, CG_ERR_FORMAT, "NUL byte in key line");
		goto out;
	}
	keyfile_next_field(line, len, &pos, &ts, &tl);
	keyfile_next_field(line, len, &pos, &is, &il);
	keyfile_next_field(line, len, &pos, &bs, &bl);
	keyfile_next_field(line, len, &pos, &rs, &rl);
	if (tl == 0 || il == 0 || bl == 0) {
		r = cg_err_set(err, CG_ERR_FORMAT,
		    "key line must be \"<type> <key id> <base64 key>\"");
		goto out;
	}
	if (rl != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "trailing garbage after the key");
		goto out;
	}
	if ((info = keyfile_info_by_name(line + ts, tl)) == NULL) {
		r = cg_err_set(err, CG_ERR_FORMAT, "unknown key type");
		goto out;
	}
	if (info->type != want->type) {
		r = cg_err_set(err, CG_ERR_FORMAT, "key is a %s, expected a %s",
		    info->name, want->name);
		goto out;
	}
	if (il != 2 * KEYFILE_ID_LEN || !keyfile_is_hex(line + is, il) ||
	    sodium_hex2bin(id, sizeof(id), line + is, il, NULL, &bin_len, NULL) != 0 ||
	    bin_len != KEYFILE_ID_LEN) {
		r = cg_err_set(err, CG_ERR_FORMAT, "key id must be %d hex digits",
		    2 * KEYFILE_ID_LEN);
		goto out;
	}
	if (bl != sodium_base64_ENCODED_LEN(info->key_len, KEYFILE_B64) - 1) {
		r = cg_err_set(err, CG_ERR_FORMAT, "wrong key length for a %s (expected %zu bytes)",
		    info->name, info->key_len);
		goto out;
	}
	if ((k = keyfile_alloc(info)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (b64_decode_strict(line + bs, bl, k->key, k->key_len, &bin_len) != 0 || bin_len != k->key_len) {
		r = cg_err_set(err, CG_ERR_FORMAT, "key is not valid base64");
		goto out;
	}
	if ((r = keyfile_derive_pub(k, err)) != 0)
		goto out;
	if ((r = keyfile_compute_id(info, k->key, k->pub, k->id)) != 0) {
		cg_err_set(err, r, "cannot compute the key id");
		goto out;
	}
	if (sodium_memcmp(k->id, id, KEYFILE_ID_LEN) != 0) {
		r = cg_err_set(err, CG_ERR_FORMAT, "key id does not match the key: file corrupt");
		goto out;
	}
	*out = k;
	k = NULL; /* transferred */
	r = 0;
out:
	keyfile_free(k);
	return r;
}

int
keyfile_parse_public_line(const char *line, size_t len, enum keyfile_type expect,
    struct keyfile_key **out, struct cg_err *err)
{
	const struct keyfile_type_info *want = keyfile_info(expect);

	*out = NULL;
	if (want == NULL || want->secret)
		return cg_err_set(err, CG_ERR_ARG, "only public keys are accepted in a key line");
	/* A pasted line may keep its newline. */
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > KEYFILE_LINE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "key line is longer than %d bytes",
		    KEYFILE_LINE_MAX);
	return keyfile_parse_line(line, len, expect, out, err);
}

int
keyfile_parse(const char *name, const char *buf, size_t len, enum keyfile_type expect,
    struct keyfile_key **out, struct cg_err *err)
{
	struct keyfile_key *k = NULL;
	size_t pos = 0, lineno = 0, key_lineno = 0, llen, i;
	const char *line, *nl;
	int r;

	*out = NULL;
	if (len > KEYFILE_FILE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "%s: key file is larger than %d bytes",
		    name, KEYFILE_FILE_MAX);
		goto out;
	}
	while (pos < len) {
		lineno++;
		line = buf + pos;
		nl = memchr(line, '\n', len - pos);
		llen = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl != NULL ? 1 : 0);
		if (llen > KEYFILE_LINE_MAX) {
			r = cg_err_set(err, CG_ERR_LIMIT, "%s:%zu: line is longer than %d bytes",
			    name, lineno, KEYFILE_LINE_MAX);
			goto out;
		}
		if (llen > 0 && line[0] == '#')
			continue;
		for (i = 0; i < llen && keyfile_is_space(line[i]); i++)
			;
		if (i == llen)
			continue;
		if (k != NULL) {
			r = cg_err_set(err, CG_ERR_FORMAT,
			    "%s:%zu: more than one key line (the key is on line %zu)",
			    name, lineno, key_lineno);
			goto out;
		}
		if ((r = keyfile_parse_line(line, llen, expect, &k, err)) != 0) {
			cg_err_prefix(err, "%s:%zu", name, lineno);
			goto out;
		}
		key_lineno = lineno;
	}
	if (k == NULL) {
		r = cg_err_set(err, CG_ERR_FORMAT, "%s: no key line", name);
		goto out;
	}
	*out = k;
	k = NULL; /* transferred */
	r = 0;
out:
	keyfile_free(k);
	return r;
}

int
keyfile_load(const char *path, enum keyfile_type expect, struct keyfile_key **out,
    struct cg_err *err)
{
	const struct keyfile_type_info *want = keyfile_info(expect);
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	struct stat st;
	int fd = -1, r;

	*out = NULL;
	if (want == NULL) {
		r = cg_err_set(err, CG_ERR_ARG, "unknown expected key type");
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot open key file %s: %s", path, strerror(errno));
		goto out;
	}
	/* fstat the descriptor we read, so the file checked is the file read. */
	if (fstat(fd, &st) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot stat key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = cg_err_set(err, CG_ERR_IO, "key file %s is not a regular file", path);
		goto out;
	}
	if (want->secret && (st.st_mode & 077) != 0) {
		r = cg_err_set(err, CG_ERR_PERM,
		    "key file %s is accessible by group or others (mode %04o); run: chmod 600 %s",
		    path, (unsigned int)(st.st_mode & 07777), path);
		goto out;
	}
	/* Someone else's file could be replaced or read by them; only this user's keys are trusted. */
	if (want->secret && st.st_uid != geteuid()) {
		r = cg_err_set(err, CG_ERR_PERM,
		    "key file %s is owned by uid %u, not by the user running crossgate (uid %u); run: chown %u %s",
		    path, (unsigned int)st.st_uid, (unsigned int)geteuid(), (unsigned int)geteuid(), path);
		goto out;
	}
	if (st.st_size > KEYFILE_FILE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "%s: key file is larger than %d bytes",
		    path, KEYFILE_FILE_MAX);
		goto out;
	}
	/* secmem: the file holds the key as base64. One spare byte catches growth. */
	if ((buf = secmem_alloc(KEYFILE_FILE_MAX + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	while (len < KEYFILE_FILE_MAX + 1) {
		n = read(fd, buf + len, KEYFILE_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cg_err_set(err, CG_ERR_IO, "cannot read key file %s: %s",
			    path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = keyfile_parse(path, buf, len, expect, out, err);
out:
	secmem_free(buf, KEYFILE_FILE_MAX + 1);
	if (fd >= 0)
		close(fd);
	return r;
}

static int
keyfile_write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make the rename or link durable; best effort, as some filesystems refuse it. */
static void
keyfile_sync_dir(const char *path)
{
	(void)outfile_sync_dir(path);
}

int
keyfile_write(const char *path, const struct keyfile_key *key, const char *comment,
    int force, struct cg_err *err)
{
	const struct keyfile_type_info *info = keyfile_info(key->type);
	char *text = NULL, *tmp = NULL;
	unsigned char rnd[8];
	char rhex[17];
	size_t len = 0, clen, plen = strlen(path), tries;
	mode_t mode;
	int fd = -1, created = 0, r;

	if (info == NULL || key->key == NULL || key->key_len != info->key_len) {
		r = cg_err_set(err, CG_ERR_ARG, "not a valid key");
		goto out;
	}
	mode = info->secret ? 0600 : 0644;
	if (comment != NULL) {
		clen = strlen(comment);
		if (strpbrk(comment, "\r\n") != NULL) {
			r = cg_err_set(err, CG_ERR_ARG, "key file comment must be one line");
			goto out;
		}
		if (clen + 2 > KEYFILE_LINE_MAX) {
			r = cg_err_set(err, CG_ERR_ARG, "key file comment is longer than %d bytes",
			    KEYFILE_LINE_MAX - 2);
			goto out;
		}
	}
	if ((text = secmem_alloc(KEYFILE_FILE_MAX)) == NULL ||
	    (tmp = malloc(plen + sizeof(".tmp-") + sizeof(rhex))) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (comment != NULL) {
		len = (size_t)snprintf(text, KEYFILE_FILE_MAX, "# %s\n", comment);
	}
	if ((r = keyfile_format_line(key, text + len, KEYFILE_FILE_MAX - len - 1)) != 0) {
		cg_err_set(err, r, "cannot format the key line");
		goto out;
	}
	len += strlen(text + len);
	text[len++] = '\n';

	/* A fresh name in the same directory, so the final rename or link is atomic. */
	for (tries = 0; ; tries++) {
		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2hex(rhex, sizeof(rhex), rnd, sizeof(rnd));
		snprintf(tmp, plen + sizeof(".tmp-") + sizeof(rhex), "%s.tmp-%s", path, rhex);
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd >= 0 || errno != EEXIST || tries >= 8)
			break;
	}
	if (fd < 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot create a temporary file next to %s: %s",
		    path, strerror(errno));
		goto out;
	}
	created = 1;
	/* The umask may have narrowed a public file's mode; the header promises 0644. */
	if (fchmod(fd, mode) != 0 || keyfile_write_all(fd, text, len) != 0 || fsync(fd) != 0) {
		r = cg_err_set(err, CG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = cg_err_set(err, CG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (force) {
		if (rename(tmp, path) != 0) {
			r = cg_err_set(err, CG_ERR_IO, "cannot rename %s to %s: %s",
			    tmp, path, strerror(errno));
			goto out;
		}
	} else {
		/* link() never replaces an existing file, unlike rename(). */
		if (link(tmp, path) != 0) {
			if (errno == EEXIST)
				r = cg_err_set(err, CG_ERR_IO, "%s exists; refusing to overwrite", path);
			else
				r = cg_err_set(err, CG_ERR_IO, "cannot create %s: %s",
				    path, strerror(errno));
			goto out;
		}
		(void)unlink(tmp);
	}
	created = 0; /* nothing left to remove */
	keyfile_sync_dir(path);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (created)
		(void)unlink(tmp);
	free(tmp);
	secmem_free(text, KEYFILE_FILE_MAX);
	return r;
}

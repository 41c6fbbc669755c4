/*
 * keyfile.h - key generation and key files.
 *
 * A key file is text: comment lines starting with '#', and exactly one key line
 *
 *     <type> <key id, 16 hex digits> <base64 key bytes>
 *
 * e.g. "ed25519-public 3f9a0c1d2e4b5a69 Zm9v...".  The same key line (without
 * the comments) is how a public key is pasted into a policy file.
 *
 * Key ids are 8 bytes: for a key pair, BLAKE2b-64("crossgate key id v1" ||
 * type byte || public key), so both halves share the id (the type byte is the
 * enum value of the public type: 2 for X25519, 4 for Ed25519); for a symmetric key,
 * BLAKE2b-64 keyed with the key over "crossgate key id v1".  A file whose id
 * does not match its key is rejected as corrupt.
 *
 * Secret keys live in secmem (sodium_malloc) memory and keyfile_free() wipes
 * them.  Secret files are created 0600 with O_EXCL (never overwritten unless
 * `force`), and keyfile_load() refuses a secret file that group or others can
 * read or write.
 */
#ifndef CG_KEYFILE_H
#define CG_KEYFILE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define KEYFILE_ID_LEN 8
#define KEYFILE_LINE_MAX 256
#define KEYFILE_FILE_MAX 4096

enum keyfile_type {
	KEYFILE_X25519_SECRET = 1,   /* 32-byte crypto_box secret key; pub = its public key */
	KEYFILE_X25519_PUBLIC,       /* 32 bytes */
	KEYFILE_ED25519_SECRET,      /* 64-byte crypto_sign secret key; pub = its public key */
	KEYFILE_ED25519_PUBLIC,      /* 32 bytes */
	KEYFILE_MATCH,               /* 32-byte symmetric: the partners' shared token PRF key */
	KEYFILE_STORAGE,             /* 32-byte symmetric: the gateway's at-rest key */
};

/*
 * The operations on a secret key that another process holds (privilege
 * separation: gateway/monitor.h).  A key with an agent has key == NULL and
 * key_len == 0; its type, id and pub are the real key's, so that everything
 * that needs only those works unchanged, and the few places that need the
 * secret call the agent instead.  Each returns 0 or a negative CG_ERR_* with
 * err set (a refusal, or the other process gone).
 */
#define KEYFILE_AGENT_WRAPPED_LEN 48     /* a batch key sealed at rest (gateway/ingest.h) */
#define KEYFILE_AGENT_TOKEN_LEN 32       /* crypto/token.h TOKEN_LEN */
#define KEYFILE_AGENT_TOMBSTONES_MAX 512 /* tombstones per call: 17 KB asked, 16 KB answered */
struct keyfile_agent {
	void *ctx;
	/* X25519 secret: open a batch key sealed to this key (crypto/seal.h seal_unwrap_key). */
	int (*unwrap_key)(void *ctx, const unsigned char *wrapped, size_t len, unsigned char key[32],
	    struct cg_err *err);
	/* Storage key: seal / open a batch key at rest (gateway/ingest.h ingest_wrap_batch_key). */
	int (*storage_wrap)(void *ctx, const unsigned char batch_id[16], const unsigned char key[32],
	    unsigned char wrapped[KEYFILE_AGENT_WRAPPED_LEN], struct cg_err *err);
	int (*storage_unwrap)(void *ctx, const unsigned char batch_id[16], const unsigned char *wrapped, size_t len,
	    unsigned char key[32], struct cg_err *err);
	/* Storage key: the tombstones of n <= KEYFILE_AGENT_TOMBSTONES_MAX (kind, token) pairs (gateway/erase.h). */
	int (*tombstones)(void *ctx, const unsigned char *kinds, const unsigned char *tokens, size_t n,
	    unsigned char *out, struct cg_err *err);
	/* Storage key: the audience refusal test's HMAC of a member-set digest (gateway/audience.h). */
	int (*refusal_mac)(void *ctx, const unsigned char digest[32], unsigned char out[32], struct cg_err *err);
	/* Ed25519 secret: sign a checkpoint body as the signed note of `name` (audit/note.h note_sign). */
	int (*sign_note)(void *ctx, const char *body, size_t len, const char *name, char **note, struct cg_err *err);
};

struct keyfile_key {
	enum keyfile_type type;
	unsigned char id[KEYFILE_ID_LEN];
	unsigned char *key;      /* owned; secmem for secret types, plain malloc for public; NULL with an agent */
	size_t key_len;
	unsigned char pub[32];   /* public half, for the four asymmetric types */
	const struct keyfile_agent *agent;   /* not owned; NULL: the secret is in key */
};

/* Names used in files: "x25519-secret", "ed25519-public", "match-key", ... */
const char *keyfile_type_name(enum keyfile_type type);

/* Generate a fresh secret key of `type` (a *_SECRET type, MATCH or STORAGE). Caller owns *out. */
int keyfile_generate(enum keyfile_type type, struct keyfile_key **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(2);

/* The public half of an asymmetric secret key, as a new key of the *_PUBLIC type. Caller owns *out. */
int keyfile_public_of(const struct keyfile_key *secret, struct keyfile_key **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Write `key` to `path`: mode 0600 for secret types, 0644 for public ones,
 * written to a temporary file, fsynced and renamed.  Refuses to replace an
 * existing file unless `force`.  `comment` (may be NULL) becomes a '#' line.
 */
int keyfile_write(const char *path, const struct keyfile_key *key, const char *comment,
    int force, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Load a key file; `expect` is the type the caller needs (a mismatch is an
 * error naming both).  Secret files must not be accessible by group or others
 * (CG_ERR_PERM, the message gives the mode and the chmod to run).  Errors
 * name the path and line.  Caller owns *out.
 */
int keyfile_load(const char *path, enum keyfile_type expect, struct keyfile_key **out,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Parse the bytes of a key file (as keyfile_load does after reading it, but
 * without the permission check); `name` prefixes messages ("name:line: ...").
 * Caller owns *out and wipes buf if it held a secret key.
 */
int keyfile_parse(const char *name, const char *buf, size_t len, enum keyfile_type expect,
    struct keyfile_key **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 5);

/*
 * Parse one key line (as in a policy file); only public types are accepted here.
 * A trailing newline is allowed.  Messages are bare reasons, for the caller to
 * prefix with where the line came from.
 */
int keyfile_parse_public_line(const char *line, size_t len, enum keyfile_type expect,
    struct keyfile_key **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);

/*
 * Format the key line of a public key (no newline) into out (KEYFILE_LINE_MAX
 * bytes).  CG_ERR_ARG for a secret type, CG_ERR_LIMIT if out_size is too small.
 */
int keyfile_public_line(const struct keyfile_key *pub, char *out, size_t out_size)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* 16 lowercase hex digits and a NUL. */
void keyfile_id_hex(const unsigned char id[KEYFILE_ID_LEN], char out[2 * KEYFILE_ID_LEN + 1]);

/* Wipes and frees; NULL is a no-op. */
void keyfile_free(struct keyfile_key *key);

#endif

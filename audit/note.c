/* note.c - see note.h */
#include "audit/note.h"
#include "base/b64.h"
#include "base/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define NOTE_ALG_ED25519 0x01
#define NOTE_ALG_COSIG_V1 0x04
#define NOTE_SIG_LEN crypto_sign_BYTES
#define NOTE_SIG_BLOB_LEN (4 + NOTE_SIG_LEN)
#define NOTE_SIG_B64_MAX 1368          /* decodes to at most 1 KiB: witnesses' longer cosignatures fit */
#define NOTE_SIG_LINES_MAX 100         /* as golang.org/x/mod/sumdb/note: bounds verification work */
#define NOTE_VKEY_B64_LEN 44           /* base64 of 0x01 || 32-byte key */
#define NOTE_ROOT_B64_LEN 44

/* U+2014 EM DASH then a space: how every signature line starts. */
static const char note_sig_prefix[] = "\xe2\x80\x94 ";
#define NOTE_SIG_PREFIX_LEN (sizeof(note_sig_prefix) - 1)

/* Unicode White_Space, as Go's unicode.IsSpace, which the C2SP name rule uses. */
static int
note_is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
	    c == 0x205f || c == 0x3000;
}

/*
 * Valid UTF-8 without control characters other than '\n' (C2SP signed-note).
 * On failure *bad_line is the 1-based line of the first bad byte.
 */
static int
note_text_ok(const char *s, size_t len, size_t *bad_line)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, line = 1;
	uint32_t c;

	while (i < len) {
		n = utf8_decode(u + i, len - i, &c);
		if (n == 0 || (c < 0x20 && c != '\n')) {
			*bad_line = line;
			return 0;
		}
		if (c == '\n')
			line++;
		i += n;
	}
	return 1;
}

/* C2SP: a key name is non-empty UTF-8 without spaces, '+' or control characters. */
static int
note_name_ok(const char *name, size_t len)
{
	const unsigned char *u = (const unsigned char *)name;
	size_t i = 0, n;
	uint32_t c;

	if (len == 0 || len > NOTE_NAME_MAX)
		return 0;
	while (i < len) {
		n = utf8_decode(u + i, len - i, &c);
		if (n == 0 || c < 0x20 || c == '+' || note_is_space(c))
			return 0;
		i += n;
	}
	return 1;
}

static int
note_has_empty_line(const char *s, size_t len)
{
	size_t i;

	if (len > 0 && s[0] == '\n')
		return 1;
	for (i = 1; i < len; i++) {
		if (s[i] == '\n' && s[i - 1] == '\n')
			return 1;
	}
	return 0;
}

/* First 4 bytes (big-endian) of SHA-256(name || 0x0A || alg || pub): C2SP signed-note key ids. */
static uint32_t
note_alg_key_id(const char *name, unsigned char alg, const unsigned char pub[32])
{
	const unsigned char sep[2] = { '\n', alg };
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)name, strlen(name));
	crypto_hash_sha256_update(&st, sep, sizeof(sep));
	crypto_hash_sha256_update(&st, pub, 32);
	crypto_hash_sha256_final(&st, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | (uint32_t)h[3];
}

uint32_t
note_key_id(const char *name, const unsigned char pub[32])
{
	return note_alg_key_id(name, NOTE_ALG_ED25519, pub);
}

int
note_sign(const char *text, size_t len, const char *name, const unsigned char sk[64],
    char **out, struct cg_err *err)
{
	unsigned char blob[NOTE_SIG_BLOB_LEN];
	char b64[sodium_base64_ENCODED_LEN(NOTE_SIG_BLOB_LEN, sodium_base64_VARIANT_ORIGINAL)];
	char *buf = NULL;
	size_t name_len, total, bad_line, pos;
	uint32_t id;
	int r = CG_ERR_INTERNAL;

	*out = NULL;
	name_len = strnlen(name, NOTE_NAME_MAX + 1);
	if (!note_name_ok(name, name_len)) {
		r = cg_err_set(err, CG_ERR_ARG, "note signer name is empty, too long, or contains a space or '+'");
		goto out;
	}
	if (len > NOTE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "note text is larger than %d bytes", NOTE_MAX);
		goto out;
	}
	if (len == 0 || text[len - 1] != '\n') {
		r = cg_err_set(err, CG_ERR_ARG, "note text does not end in a newline");
		goto out;
	}
	/* An empty line would be taken for the separator before the signatures. */
	if (note_has_empty_line(text, len)) {
		r = cg_err_set(err, CG_ERR_ARG, "note text contains an empty line");
		goto out;
	}
	if (!note_text_ok(text, len, &bad_line)) {
		r = cg_err_set(err, CG_ERR_ARG, "note text line %zu: invalid UTF-8 or a control character",
		    bad_line);
		goto out;
	}
	total = len + 1 + NOTE_SIG_PREFIX_LEN + name_len + 1 + (sizeof(b64) - 1) + 1;
	if (total > NOTE_MAX) {
		r = cg_err_set(err, CG_ERR_LIMIT, "signed note would be larger than %d bytes", NOTE_MAX);
		goto out;
	}

	id = note_key_id(name, sk + 32);   /* libsodium sk = seed || pub */
	blob[0] = (unsigned char)(id >> 24);
	blob[1] = (unsigned char)(id >> 16);
	blob[2] = (unsigned char)(id >> 8);
	blob[3] = (unsigned char)id;
	/* C2SP: the signed message is exactly the text, final newline included. */
	if (crypto_sign_detached(blob + 4, NULL, (const unsigned char *)text, len, sk) != 0) {
		r = cg_err_set(err, CG_ERR_CRYPTO, "note signing failed");
		goto out;
	}
	sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);

	if ((buf = malloc(total + 1)) == NULL) {
		r = cg_err_set(err, CG_ERR_NOMEM, "signed note: out of memory");
		goto out;
	}
	pos = 0;
	memcpy(buf + pos, text, len);
	pos += len;
	buf[pos++] = '\n';
	memcpy(buf + pos, note_sig_prefix, NOTE_SIG_PREFIX_LEN);
	pos += NOTE_SIG_PREFIX_LEN;
	memcpy(buf + pos, name, name_len);
	pos += name_len;
	buf[pos++] = ' ';
	memcpy(buf + pos, b64, sizeof(b64) - 1);
	pos += sizeof(b64) - 1;
	buf[pos++] = '\n';
	buf[pos] = '\0';

	*out = buf;
	buf = NULL; /* transferred */
	r = 0;
 out:
	free(buf);
	return r;
}

int
note_verify(const char *note, size_t len, const char *name, const unsigned char pub[32],
    size_t *text_len, struct cg_err *err)
{
	unsigned char blob[NOTE_SIG_B64_MAX];   /* decoded size is below the encoded size */
	const char *sigs, *line, *nl, *sp, *b64;
	size_t name_len, split, sigs_len, line_len, b64_len, blob_len, line_no, bad_line, i, nlines = 0;
	uint32_t want_id, id;
	int found = 0;

	*text_len = 0;
	name_len = strnlen(name, NOTE_NAME_MAX + 1);
	if (!note_name_ok(name, name_len))
		return cg_err_set(err, CG_ERR_ARG, "signed note: expected signer name is invalid");
	if (len > NOTE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "signed note is larger than %d bytes", NOTE_MAX);
	if (!note_text_ok(note, len, &bad_line))
		return cg_err_set(err, CG_ERR_FORMAT, "signed note line %zu: invalid UTF-8 or a control character",
		    bad_line);
	if (len == 0 || note[len - 1] != '\n')
		return cg_err_set(err, CG_ERR_FORMAT, "signed note does not end in a newline");

	/* The signature block follows the last blank line (as Go's note.Open). */
	for (split = len - 1; split > 0; split--) {
		if (note[split - 1] == '\n' && note[split] == '\n')
			break;
	}
	if (split == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "signed note has no blank line before its signatures");
	split--;   /* index of the text's final '\n' */
	sigs = note + split + 2;
	sigs_len = len - (split + 2);
	if (sigs_len == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "signed note has no signature lines");

	line_no = 1;   /* the blank line's number, once the text's lines are counted */
	for (i = 0; i <= split; i++)
		line_no += note[i] == '\n';

	want_id = note_key_id(name, pub);
	while (sigs_len > 0) {
		line_no++;
		line = sigs;
		/* Always found: the block ends in '\n'. */
		nl = memchr(line, '\n', sigs_len);
		line_len = (size_t)(nl - line);
		sigs = nl + 1;
		sigs_len -= line_len + 1;
		if (++nlines > NOTE_SIG_LINES_MAX)
			return cg_err_set(err, CG_ERR_LIMIT, "signed note line %zu: more than %d signature lines",
			    line_no, NOTE_SIG_LINES_MAX);
		if (line_len < NOTE_SIG_PREFIX_LEN || memcmp(line, note_sig_prefix, NOTE_SIG_PREFIX_LEN) != 0)
			return cg_err_set(err, CG_ERR_FORMAT,
			    "signed note line %zu: signature line does not start with an em dash and a space",
			    line_no);
		line += NOTE_SIG_PREFIX_LEN;
		line_len -= NOTE_SIG_PREFIX_LEN;
		sp = memchr(line, ' ', line_len);
		if (sp == NULL || !note_name_ok(line, (size_t)(sp - line)))
			return cg_err_set(err, CG_ERR_FORMAT,
			    "signed note line %zu: malformed signer name in signature line", line_no);
		b64 = sp + 1;
		b64_len = line_len - (size_t)(b64 - line);
		if (b64_len == 0 || b64_len > NOTE_SIG_B64_MAX ||
		    b64_decode_strict(b64, b64_len, blob, sizeof(blob), &blob_len) != 0)
			return cg_err_set(err, CG_ERR_FORMAT, "signed note line %zu: signature is not valid base64",
			    line_no);
		if (blob_len < 5)
			return cg_err_set(err, CG_ERR_FORMAT, "signed note line %zu: signature is too short", line_no);

		/* Lines of other names or keys belong to witnesses: checked for form only. */
		id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | (uint32_t)blob[3];
		if ((size_t)(sp - line) != name_len || memcmp(line, name, name_len) != 0 || id != want_id)
			continue;
		if (blob_len != NOTE_SIG_BLOB_LEN)
			return cg_err_set(err, CG_ERR_FORMAT,
			    "signed note line %zu: Ed25519 signature has %zu bytes, expected %d",
			    line_no, blob_len - 4, NOTE_SIG_LEN);
		if (crypto_sign_verify_detached(blob + 4, (const unsigned char *)note, split + 1, pub) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "signed note line %zu: signature does not verify",
			    line_no);
		found = 1;
	}
	if (!found)
		return cg_err_set(err, CG_ERR_VERIFY, "signed note has no signature by the expected key");
	*text_len = split + 1;
	return 0;
}

static int
note_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parse "<name>+<hex id>+<base64(alg || pub)>" for algorithm byte `alg`;
 * `what` names the kind of key in messages.
 */
static int
note_parse_alg_key(const char *vkey, unsigned char alg, const char *what, char *name, unsigned char pub[32],
    struct cg_err *err)
{
	unsigned char key[NOTE_VKEY_B64_LEN];
	const char *p1, *p2, *b64;
	size_t name_len, b64_len, key_len, i;
	uint32_t id = 0;
	int d;

	name[0] = '\0';
	memset(pub, 0, 32);
	/* The base64 part may itself contain '+': split on the first two only. */
	if ((p1 = strchr(vkey, '+')) == NULL || (p2 = strchr(p1 + 1, '+')) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: expected <name>+<key id>+<key>", what);
	name_len = (size_t)(p1 - vkey);
	if (!note_name_ok(vkey, name_len))
		return cg_err_set(err, CG_ERR_FORMAT, "%s: name is empty, too long, or contains a space", what);
	if (p2 - p1 - 1 != 8)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: key id is not 8 hex digits", what);
	for (i = 0; i < 8; i++) {
		if ((d = note_hex_digit(p1[1 + i])) < 0)
			return cg_err_set(err, CG_ERR_FORMAT, "%s: key id is not 8 hex digits", what);
		id = id << 4 | (uint32_t)d;
	}
	b64 = p2 + 1;
	b64_len = strnlen(b64, NOTE_VKEY_B64_LEN + 1);
	if (b64_len > NOTE_VKEY_B64_LEN ||
	    b64_decode_strict(b64, b64_len, key, sizeof(key), &key_len) != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: key is not valid base64 of 33 bytes", what);
	if (key_len != 33)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: key has %zu bytes, expected 33", what, key_len);
	if (key[0] != alg)
		return cg_err_set(err, CG_ERR_FORMAT, "%s: unknown signature algorithm (not %s, type 0x%02x)", what,
		    alg == NOTE_ALG_COSIG_V1 ? "an Ed25519 cosignature/v1 key" : "an Ed25519 note key", alg);
	memcpy(name, vkey, name_len);
	name[name_len] = '\0';
	if (note_alg_key_id(name, alg, key + 1) != id) {
		name[0] = '\0';
		return cg_err_set(err, CG_ERR_FORMAT, "%s: key id does not match the key", what);
	}
	memcpy(pub, key + 1, 32);
	return 0;
}

int
note_parse_verifier_key(const char *vkey, char *name, unsigned char pub[32], struct cg_err *err)
{
	return note_parse_alg_key(vkey, NOTE_ALG_ED25519, "verifier key", name, pub, err);
}

static int
note_format_alg_key(const char *name, unsigned char alg, const unsigned char pub[32], char *out, size_t out_size)
{
	unsigned char key[33];
	char b64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];
	size_t name_len;
	int n;

	if (out_size > 0)
		out[0] = '\0';
	name_len = strnlen(name, NOTE_NAME_MAX + 1);
	if (!note_name_ok(name, name_len))
		return CG_ERR_ARG;
	key[0] = alg;
	memcpy(key + 1, pub, 32);
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(out, out_size, "%s+%08" PRIx32 "+%s", name, note_alg_key_id(name, alg, pub), b64);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			out[0] = '\0';
		return CG_ERR_LIMIT;
	}
	return 0;
}

int
note_format_verifier_key(const char *name, const unsigned char pub[32], char *out, size_t out_size)
{
	return note_format_alg_key(name, NOTE_ALG_ED25519, pub, out, out_size);
}

/* Origins travel as the first line of a signed note: same character rules, no newline. */
static int
checkpoint_origin_ok(const char *s, size_t len)
{
	size_t bad_line;

	return len > 0 && len <= NOTE_NAME_MAX && memchr(s, '\n', len) == NULL &&
	    note_text_ok(s, len, &bad_line);
}

int
checkpoint_format(const struct checkpoint *cp, char *out, size_t out_size, size_t *out_len)
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	size_t origin_len;
	int n;

	*out_len = 0;
	if (out_size > 0)
		out[0] = '\0';
	origin_len = strnlen(cp->origin, sizeof(cp->origin));
	if (origin_len == sizeof(cp->origin) || !checkpoint_origin_ok(cp->origin, origin_len))
		return CG_ERR_ARG;
	sodium_bin2base64(b64, sizeof(b64), cp->root, sizeof(cp->root), sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(out, out_size, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, b64);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			out[0] = '\0';
		return CG_ERR_LIMIT;
	}
	*out_len = (size_t)n;
	return 0;
}

/* Next '\n'-terminated line at *pos; 0 when none is left. */
static int
checkpoint_next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len)
{
	const char *nl;

	if (*pos >= len)
		return 0;
	nl = memchr(text + *pos, '\n', len - *pos);
	if (nl == NULL)
		return 0;
	*line = text + *pos;
	*line_len = (size_t)(nl - *line);
	*pos += *line_len + 1;
	return 1;
}

int
checkpoint_parse(const char *text, size_t len, struct checkpoint *out, struct cg_err *err)
{
	struct checkpoint cp;
	unsigned char root[48];
	const char *line;
	size_t pos = 0, line_len, root_len, i, line_no;
	uint64_t size = 0, digit;

	memset(out, 0, sizeof(*out));
	memset(&cp, 0, sizeof(cp));
	if (len > NOTE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "checkpoint is larger than %d bytes", NOTE_MAX);
	if (len == 0 || text[len - 1] != '\n')
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint does not end in a newline");

	if (!checkpoint_next_line(text, len, &pos, &line, &line_len))
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 1: missing origin");
	if (line_len == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 1: origin is empty");
	if (line_len > NOTE_NAME_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 1: origin is longer than %d bytes",
		    NOTE_NAME_MAX);
	if (!checkpoint_origin_ok(line, line_len))
		return cg_err_set(err, CG_ERR_FORMAT,
		    "checkpoint line 1: origin has invalid UTF-8 or a control character");
	memcpy(cp.origin, line, line_len);

	if (!checkpoint_next_line(text, len, &pos, &line, &line_len))
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 2: missing tree size");
	if (line_len == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 2: tree size is empty");
	/* One spelling per size, so that equal checkpoints are equal bytes. */
	if (line_len > 1 && line[0] == '0')
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 2: tree size has a leading zero");
	for (i = 0; i < line_len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 2: tree size is not a decimal number");
		digit = (uint64_t)(line[i] - '0');
		if (size > (UINT64_MAX - digit) / 10)
			return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 2: tree size exceeds 2^64-1");
		size = size * 10 + digit;
	}
	cp.size = size;

	if (!checkpoint_next_line(text, len, &pos, &line, &line_len))
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 3: missing root hash");
	if (line_len != NOTE_ROOT_B64_LEN ||
	    b64_decode_strict(line, line_len, root, sizeof(root), &root_len) != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 3: root hash is not base64 of 32 bytes");
	if (root_len != sizeof(cp.root))
		return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line 3: root hash has %zu bytes, expected 32",
		    root_len);
	memcpy(cp.root, root, sizeof(cp.root));

	/* C2SP tlog-checkpoint: extension lines are opaque here, but never empty. */
	for (line_no = 4; checkpoint_next_line(text, len, &pos, &line, &line_len); line_no++) {
		if (line_len == 0)
			return cg_err_set(err, CG_ERR_FORMAT, "checkpoint line %zu: empty extension line", line_no);
	}

	*out = cp;
	return 0;
}

/* ---- cosignatures (C2SP tlog-cosignature, cosignature/v1) ---------------- */

#define NOTE_COSIG_BLOB_LEN (4 + 8 + NOTE_SIG_LEN)
static const char note_cosig_header[] = "cosignature/v1\ntime ";

uint32_t
note_cosig_key_id(const char *name, const unsigned char pub[32])
{
	return note_alg_key_id(name, NOTE_ALG_COSIG_V1, pub);
}

int
note_parse_cosig_key(const char *vkey, char *name, unsigned char pub[32], struct cg_err *err)
{
	/* 0x01 would be a log's note key: a cosignature key says so with 0x04. */
	return note_parse_alg_key(vkey, NOTE_ALG_COSIG_V1, "witness key", name, pub, err);
}

int
note_format_cosig_key(const char *name, const unsigned char pub[32], char *out, size_t out_size)
{
	return note_format_alg_key(name, NOTE_ALG_COSIG_V1, pub, out, out_size);
}

/* Ed25519 over "cosignature/v1\ntime <t>\n" || text, without copying text. */
static int
note_cosig_message(const char *text, size_t len, uint64_t timestamp, unsigned char **msg, size_t *msg_len)
{
	char head[sizeof(note_cosig_header) + 24];
	int n;

	*msg = NULL;
	*msg_len = 0;
	n = snprintf(head, sizeof(head), "%s%" PRIu64 "\n", note_cosig_header, timestamp);
	if (n < 0 || (size_t)n >= sizeof(head))
		return CG_ERR_INTERNAL;
	if ((*msg = malloc((size_t)n + len)) == NULL)
		return CG_ERR_NOMEM;
	memcpy(*msg, head, (size_t)n);
	memcpy(*msg + n, text, len);
	*msg_len = (size_t)n + len;
	return 0;
}

int
note_cosign(const char *text, size_t len, const char *name, const unsigned char sk[64], uint64_t timestamp,
    char line[NOTE_COSIG_LINE_MAX], struct cg_err *err)
{
	unsigned char blob[NOTE_COSIG_BLOB_LEN], *msg = NULL;
	char b64[sodium_base64_ENCODED_LEN(NOTE_COSIG_BLOB_LEN, sodium_base64_VARIANT_ORIGINAL)];
	size_t name_len, msg_len, bad_line;
	uint32_t id;
	int r, i, n;

	line[0] = '\0';
	name_len = strnlen(name, NOTE_NAME_MAX + 1);
	if (!note_name_ok(name, name_len))
		return cg_err_set(err, CG_ERR_ARG, "witness name is empty, too long, or contains a space or '+'");
	if (timestamp > (uint64_t)INT64_MAX)
		return cg_err_set(err, CG_ERR_ARG, "cosignature time exceeds 2^63-1");
	if (len == 0 || len > NOTE_MAX || text[len - 1] != '\n' || note_has_empty_line(text, len) ||
	    !note_text_ok(text, len, &bad_line))
		return cg_err_set(err, CG_ERR_ARG, "cosignature: the checkpoint body is not valid note text");
	if ((r = note_cosig_message(text, len, timestamp, &msg, &msg_len)) != 0)
		return cg_err_set(err, r, "cosignature: out of memory");
	id = note_cosig_key_id(name, sk + 32);
	for (i = 0; i < 4; i++)
		blob[i] = (unsigned char)(id >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		blob[4 + i] = (unsigned char)(timestamp >> (56 - 8 * i));
	if (crypto_sign_detached(blob + 12, NULL, msg, msg_len, sk) != 0) {
		free(msg);
		return cg_err_set(err, CG_ERR_CRYPTO, "cosignature: signing failed");
	}
	free(msg);
	sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(line, NOTE_COSIG_LINE_MAX, "%s%s %s\n", note_sig_prefix, name, b64);
	if (n < 0 || n >= NOTE_COSIG_LINE_MAX) {
		line[0] = '\0';
		return cg_err_set(err, CG_ERR_LIMIT, "cosignature line too long");
	}
	return 0;
}

int
note_verify_cosig_line(const char *text, size_t text_len, const char *line, size_t line_len, const char *name,
    const unsigned char pub[32], uint64_t *timestamp, struct cg_err *err)
{
	unsigned char blob[NOTE_SIG_B64_MAX], *msg = NULL;
	const char *sp, *b64;
	size_t name_len, b64_len, blob_len, msg_len;
	uint64_t t = 0;
	uint32_t id;
	int i, r;

	*timestamp = 0;
	name_len = strnlen(name, NOTE_NAME_MAX + 1);
	if (!note_name_ok(name, name_len))
		return cg_err_set(err, CG_ERR_ARG, "cosignature: expected witness name is invalid");
	if (line_len > 0 && line[line_len - 1] == '\n')
		line_len--;
	if (line_len < NOTE_SIG_PREFIX_LEN || memcmp(line, note_sig_prefix, NOTE_SIG_PREFIX_LEN) != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line does not start with an em dash and a space");
	line += NOTE_SIG_PREFIX_LEN;
	line_len -= NOTE_SIG_PREFIX_LEN;
	sp = memchr(line, ' ', line_len);
	if (sp == NULL || !note_name_ok(line, (size_t)(sp - line)))
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line: malformed signer name");
	b64 = sp + 1;
	b64_len = line_len - (size_t)(b64 - line);
	if (b64_len == 0 || b64_len > NOTE_SIG_B64_MAX ||
	    b64_decode_strict(b64, b64_len, blob, sizeof(blob), &blob_len) != 0)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line: signature is not valid base64");
	if (blob_len < 5)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature line: signature is too short");
	id = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | (uint32_t)blob[3];
	if ((size_t)(sp - line) != name_len || memcmp(line, name, name_len) != 0 || id != note_cosig_key_id(name, pub))
		return cg_err_set(err, CG_ERR_NOTFOUND, "cosignature line is by another signer");
	if (blob_len != NOTE_COSIG_BLOB_LEN)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature has %zu bytes, expected %d", blob_len - 4,
		    NOTE_COSIG_BLOB_LEN - 4);
	for (i = 0; i < 8; i++)
		t = t << 8 | blob[4 + i];
	if (t > (uint64_t)INT64_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "cosignature time exceeds 2^63-1");
	if ((r = note_cosig_message(text, text_len, t, &msg, &msg_len)) != 0)
		return cg_err_set(err, r, "cosignature: out of memory");
	r = crypto_sign_verify_detached(blob + 12, msg, msg_len, pub);
	free(msg);
	if (r != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "cosignature by %s does not verify", name);
	*timestamp = t;
	return 0;
}

int
note_verify_cosignature(const char *note, size_t len, const char *name, const unsigned char pub[32],
    size_t *text_len, uint64_t *timestamp, struct cg_err *err)
{
	const char *sigs, *nl;
	size_t split, sigs_len, line_len, bad_line, nlines = 0;
	uint64_t t;
	int r;

	*text_len = 0;
	*timestamp = 0;
	if (len > NOTE_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "signed note is larger than %d bytes", NOTE_MAX);
	if (!note_text_ok(note, len, &bad_line))
		return cg_err_set(err, CG_ERR_FORMAT, "signed note line %zu: invalid UTF-8 or a control character",
		    bad_line);
	if (len == 0 || note[len - 1] != '\n')
		return cg_err_set(err, CG_ERR_FORMAT, "signed note does not end in a newline");
	for (split = len - 1; split > 0; split--) {
		if (note[split - 1] == '\n' && note[split] == '\n')
			break;
	}
	if (split == 0)
		return cg_err_set(err, CG_ERR_FORMAT, "signed note has no blank line before its signatures");
	split--;
	sigs = note + split + 2;
	sigs_len = len - (split + 2);
	while (sigs_len > 0) {
		nl = memchr(sigs, '\n', sigs_len);
		line_len = (size_t)(nl - sigs);
		if (++nlines > NOTE_SIG_LINES_MAX)
			return cg_err_set(err, CG_ERR_LIMIT, "signed note has more than %d signature lines",
			    NOTE_SIG_LINES_MAX);
		r = note_verify_cosig_line(note, split + 1, sigs, line_len, name, pub, &t, err);
		if (r == 0) {
			*text_len = split + 1;
			*timestamp = t;
			return 0;
		}
		if (r != CG_ERR_NOTFOUND)
			return r;
		sigs = nl + 1;
		sigs_len -= line_len + 1;
	}
	return cg_err_set(err, CG_ERR_NOTFOUND, "signed note has no cosignature by witness %s", name);
}

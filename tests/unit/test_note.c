/* test_note.c - C2SP signed-note vector, tampering, verifier keys, checkpoints. */
#include "audit/note.h"

#include <stdint.h>
#include <sodium.h>
#include <jansson.h>

#include "tests/unit/cgtest.h"

static const char *
vec_str(json_t *v, const char *key)
{
	const char *s = json_string_value(json_object_get(v, key));

	CHECK(s != NULL);
	return s != NULL ? s : "";
}

/* "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>" -> name, id, keypair. */
static int
parse_private_key(const char *s, char name[NOTE_NAME_MAX + 1], uint32_t *id, unsigned char pk[32],
    unsigned char sk[64])
{
	static const char prefix[] = "PRIVATE+KEY+";
	unsigned char key[33];
	const char *p, *q;
	char hex[9];
	size_t key_len;
	int r = -1;

	if (strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	p = s + sizeof(prefix) - 1;
	if ((q = strchr(p, '+')) == NULL || (size_t)(q - p) > NOTE_NAME_MAX)
		return -1;
	memcpy(name, p, (size_t)(q - p));
	name[q - p] = '\0';
	p = q + 1;
	if ((q = strchr(p, '+')) == NULL || q - p != 8)
		return -1;
	memcpy(hex, p, 8);
	hex[8] = '\0';
	*id = (uint32_t)strtoul(hex, NULL, 16);
	if (sodium_base642bin(key, sizeof(key), q + 1, strlen(q + 1), NULL, &key_len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || key_len != 33 || key[0] != 0x01)
		goto out;
	if (crypto_sign_seed_keypair(pk, sk, key + 1) != 0)
		goto out;
	r = 0;
 out:
	sodium_memzero(key, sizeof(key));
	return r;
}

static int
verify(const char *note, size_t len, const char *name, const unsigned char pub[32], struct cg_err *err)
{
	size_t text_len = 12345;
	int r;

	cg_err_clear(err);
	r = note_verify(note, len, name, pub, &text_len, err);
	if (r != 0)
		CHECK_EQ_INT(text_len, 0);
	return r;
}

static int
verify_str(const char *note, const char *name, const unsigned char pub[32], struct cg_err *err)
{
	return verify(note, strlen(note), name, pub, err);
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* s with `del` bytes at off replaced by ins; caller frees. */
static char *
edit(const char *s, size_t off, size_t del, const char *ins)
{
	size_t len = strlen(s), ins_len = strlen(ins);
	char *out;

	if (off + del > len || (out = malloc(len - del + ins_len + 1)) == NULL)
		return NULL;
	memcpy(out, s, off);
	memcpy(out + off, ins, ins_len);
	memcpy(out + off + ins_len, s + off + del, len - off - del + 1);
	return out;
}

static void
check_rejected(char *note, const char *name, const unsigned char pub[32], int code, const char *msg)
{
	struct cg_err err;

	CHECK(note != NULL);
	if (note == NULL)
		return;
	CHECK_EQ_INT(verify_str(note, name, pub, &err), code);
	CHECK_CONTAINS(err.msg, msg);
	free(note);
}

static char *
concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *out = malloc(la + lb + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, a, la);
	memcpy(out + la, b, lb + 1);
	return out;
}

/* A well-formed signature line by another key, as a witness would add. */
static char *
witness_line(const char *name, size_t blob_len)
{
	unsigned char blob[128];
	char b64[sodium_base64_ENCODED_LEN(128, sodium_base64_VARIANT_ORIGINAL)];
	char *line;

	randombytes_buf(blob, blob_len);
	sodium_bin2base64(b64, sizeof(b64), blob, blob_len, sodium_base64_VARIANT_ORIGINAL);
	if ((line = malloc(strlen(name) + strlen(b64) + 8)) == NULL)
		return NULL;
	sprintf(line, "\xe2\x80\x94 %s %s\n", name, b64);
	return line;
}

static void
test_vector(json_t *v)
{
	const char *priv = vec_str(v, "private_key"), *vkey = vec_str(v, "verifier_key");
	const char *text = vec_str(v, "text"), *signed_note = vec_str(v, "signed_note");
	char name[NOTE_NAME_MAX + 1], vname[NOTE_NAME_MAX + 1], fmt[NOTE_NAME_MAX + 80];
	char *out = NULL, *tmp, *w1, *w2, *s;
	unsigned char pk[32], sk[64], vpub[32], opk[32], osk[64];
	struct cg_err err;
	uint32_t id = 0;
	size_t text_len = 0, len, i, sig_off, name_off, b64_off, b64_len, line2_off;
	int rejected;

	CHECK_EQ_INT(parse_private_key(priv, name, &id, pk, sk), 0);
	CHECK(name[0] != '\0');
	CHECK(id != 0);
	CHECK_EQ_INT(note_key_id(name, pk), id);

	/* Ed25519 is deterministic: signing must give the published note byte for byte. */
	cg_err_clear(&err);
	CHECK_EQ_INT(note_sign(text, strlen(text), name, sk, &out, &err), 0);
	CHECK_STR(out, signed_note);
	free(out);
	out = NULL;

	CHECK_EQ_INT(note_verify(signed_note, strlen(signed_note), name, pk, &text_len, &err), 0);
	CHECK_EQ_INT(text_len, strlen(text));
	CHECK(memcmp(signed_note, text, strlen(text)) == 0);

	CHECK_EQ_INT(note_parse_verifier_key(vkey, vname, vpub, &err), 0);
	CHECK_STR(vname, name);
	CHECK(memcmp(vpub, pk, 32) == 0);
	CHECK_EQ_INT(note_format_verifier_key(vname, vpub, fmt, sizeof(fmt)), 0);
	CHECK_STR(fmt, vkey);
	CHECK_EQ_INT(note_format_verifier_key(vname, vpub, fmt, strlen(vkey)), CG_ERR_LIMIT);
	CHECK_EQ_INT(note_format_verifier_key("bad name", vpub, fmt, sizeof(fmt)), CG_ERR_ARG);

	/* Offsets into the vector's note: its signature line, name and base64. */
	sig_off = strlen(text) + 1;
	name_off = sig_off + 4;                      /* after U+2014 and a space */
	b64_off = name_off + strlen(name) + 1;
	b64_len = strlen(signed_note) - b64_off - 1;
	line2_off = (size_t)(strchr(text, '\n') - text) + 1;

	/* Tampering: a text byte, a signature character, the key id, the key, the name. */
	tmp = strdup(signed_note);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		tmp[3] = tmp[3] == 'a' ? 'b' : 'a';
		check_rejected(tmp, name, pk, CG_ERR_VERIFY, "line 4: signature does not verify");
	}
	tmp = strdup(signed_note);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		tmp[b64_off + 20] = tmp[b64_off + 20] == 'A' ? 'B' : 'A';   /* past the key id */
		check_rejected(tmp, name, pk, CG_ERR_VERIFY, "line 4: signature does not verify");
	}
	tmp = strdup(signed_note);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		tmp[b64_off + 1] = tmp[b64_off + 1] == 'A' ? 'B' : 'A';    /* inside the key id */
		check_rejected(tmp, name, pk, CG_ERR_VERIFY, "no signature by the expected key");
	}
	crypto_sign_keypair(opk, osk);
	CHECK_EQ_INT(verify_str(signed_note, name, opk, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "no signature by the expected key");
	CHECK(strlen(name) < NOTE_NAME_MAX);
	memcpy(vname, name, strlen(name));
	strcpy(vname + strlen(name), "2");
	CHECK_EQ_INT(verify_str(signed_note, vname, pk, &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "no signature by the expected key");
	/* Signer name changed in the line: not ours any more. */
	tmp = strdup(signed_note);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		tmp[b64_off - 2] = tmp[b64_off - 2] == 'x' ? 'y' : 'x';
		check_rejected(tmp, name, pk, CG_ERR_VERIFY, "no signature by the expected key");
	}

	/* Every truncation is rejected. */
	len = strlen(signed_note);
	rejected = 0;
	for (i = 0; i < len; i++)
		rejected += verify(signed_note, i, name, pk, &err) != 0 && err.msg[0] != '\0';
	CHECK_EQ_INT(rejected, len);
	CHECK_EQ_INT(verify(signed_note, len - 1, name, pk, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "does not end in a newline");
	CHECK_EQ_INT(verify(signed_note, strlen(text) + 1, name, pk, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "no signature lines");
	CHECK_EQ_INT(verify(signed_note, strlen(text), name, pk, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "no blank line");
	CHECK_EQ_INT(verify(signed_note, 0, name, pk, &err), CG_ERR_FORMAT);

	/* The blank separator removed. */
	check_rejected(edit(signed_note, sig_off - 1, 1, ""), name, pk, CG_ERR_FORMAT, "no blank line");

	/* Malformed signature lines. */
	check_rejected(edit(signed_note, sig_off, 4, "-- "), name, pk, CG_ERR_FORMAT,
	    "line 4: signature line does not start with an em dash");
	check_rejected(edit(signed_note, sig_off + 3, 1, ""), name, pk, CG_ERR_FORMAT, "em dash");
	check_rejected(edit(signed_note, b64_off - 1, 1, ""), name, pk, CG_ERR_FORMAT, "malformed signer name");
	check_rejected(edit(signed_note, name_off + 2, 0, " "), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off + b64_len - 1, 1, ""), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off + b64_len, 0, "="), name, pk, CG_ERR_FORMAT, "not valid base64");
	/* Non-canonical trailing bits: the same bytes spelled another way. */
	CHECK(signed_note[b64_off + b64_len - 1] == '=' && signed_note[b64_off + b64_len - 2] != '=');
	tmp = strdup(signed_note);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		s = strchr(b64_alphabet, tmp[b64_off + b64_len - 2]);
		CHECK(s != NULL);
		if (s != NULL)
			tmp[b64_off + b64_len - 2] = b64_alphabet[(s - b64_alphabet) ^ 1];
		check_rejected(tmp, name, pk, CG_ERR_FORMAT, "not valid base64");
	}
	check_rejected(edit(signed_note, b64_off + 5, 1, "*"), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off + 5, 1, "\xc3\xa9"), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off + 5, 1, "\xef\xbc\x8f"), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off, b64_len, ""), name, pk, CG_ERR_FORMAT, "not valid base64");
	check_rejected(edit(signed_note, b64_off + 4, b64_len - 4, ""), name, pk, CG_ERR_FORMAT,
	    "line 4: signature is too short");
	check_rejected(concat(signed_note, "\n"), name, pk, CG_ERR_FORMAT, "no signature lines");
	check_rejected(edit(signed_note, 5, 0, "\x01"), name, pk, CG_ERR_FORMAT,
	    "line 1: invalid UTF-8 or a control character");
	check_rejected(edit(signed_note, line2_off + 3, 0, "\xc0\xae"), name, pk, CG_ERR_FORMAT,
	    "line 2: invalid UTF-8");
	check_rejected(edit(signed_note, line2_off + 3, 0, "\xed\xa0\x80"), name, pk, CG_ERR_FORMAT,
	    "line 2: invalid UTF-8");
	/* Valid multi-byte UTF-8 in the text is fine for the format (the signature then fails). */
	check_rejected(edit(signed_note, line2_off + 3, 0, "\xc3\xa9"), name, pk, CG_ERR_VERIFY,
	    "does not verify");
	/* A key id that matches with a signature of the wrong length. */
	{
		unsigned char blob[4 + 63];
		char b64[sodium_base64_ENCODED_LEN(sizeof(blob), sodium_base64_VARIANT_ORIGINAL)], line[256];

		blob[0] = (unsigned char)(id >> 24);
		blob[1] = (unsigned char)(id >> 16);
		blob[2] = (unsigned char)(id >> 8);
		blob[3] = (unsigned char)id;
		memset(blob + 4, 0x33, sizeof(blob) - 4);
		sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
		snprintf(line, sizeof(line), "\xe2\x80\x94 %s %s\n", name, b64);
		check_rejected(concat(signed_note, line), name, pk, CG_ERR_FORMAT, "line 5: Ed25519 signature has 63 bytes, expected 64");
		w1 = witness_line(name, 4);
		check_rejected(w1 != NULL ? concat(signed_note, w1) : NULL, name, pk, CG_ERR_FORMAT, "line 5: signature is too short");
		free(w1);
	}

	/* Witness lines (other names, other lengths) are ignored, before or after ours. */
	w1 = witness_line("witness.example/w1", 72);
	w2 = witness_line("witness.example/w2", 68);
	CHECK(w1 != NULL && w2 != NULL);
	if (w1 != NULL && w2 != NULL) {
		tmp = concat(signed_note, w1);
		s = tmp != NULL ? concat(tmp, w2) : NULL;
		CHECK(s != NULL);
		if (s != NULL) {
			CHECK_EQ_INT(verify_str(s, name, pk, &err), 0);
			CHECK_EQ_INT(verify_str(s, "witness.example/w1", pk, &err), CG_ERR_VERIFY);
			CHECK_CONTAINS(err.msg, "no signature by the expected key");
		}
		free(s);
		free(tmp);
		tmp = malloc(strlen(signed_note) + strlen(w1) + 1);
		if (tmp != NULL) {
			len = strlen(text) + 1;
			memcpy(tmp, signed_note, len);
			strcpy(tmp + len, w1);
			strcat(tmp, signed_note + len);
			CHECK_EQ_INT(verify_str(tmp, name, pk, &err), 0);
			/* Our line is now line 5: a bad one there is reported there. */
			s = strdup(tmp);
			if (s != NULL)
				s[3] = s[3] == 'a' ? 'b' : 'a';
			check_rejected(s, name, pk, CG_ERR_VERIFY, "line 5: signature does not verify");
			free(tmp);
		}
		/* Only witnesses: nothing by the expected key. */
		tmp = malloc(strlen(text) + 1 + strlen(w1) + 1);
		if (tmp != NULL) {
			sprintf(tmp, "%s\n%s", text, w1);
			check_rejected(tmp, name, pk, CG_ERR_VERIFY, "no signature by the expected key");
		}
	}
	free(w1);
	free(w2);

	/* Over the size limit: rejected before parsing. */
	tmp = malloc(NOTE_MAX + 2);
	CHECK(tmp != NULL);
	if (tmp != NULL) {
		memset(tmp, 'a', NOTE_MAX + 1);
		memcpy(tmp, signed_note, strlen(signed_note));
		tmp[NOTE_MAX + 1] = '\0';
		CHECK_EQ_INT(verify(tmp, NOTE_MAX + 1, name, pk, &err), CG_ERR_LIMIT);
		CHECK_CONTAINS(err.msg, "larger than");
		memset(tmp, 'a', NOTE_MAX);
		tmp[NOTE_MAX - 1] = '\n';
		tmp[NOTE_MAX] = '\0';
		CHECK_EQ_INT(note_sign(tmp, NOTE_MAX, name, sk, &out, &err), CG_ERR_LIMIT);
		CHECK(out == NULL);
		CHECK_CONTAINS(err.msg, "larger than");
		free(tmp);
	}

	/* Signing refuses text that could not be verified back. */
	CHECK_EQ_INT(note_sign("no newline", 10, name, sk, &out, &err), CG_ERR_ARG);
	CHECK(out == NULL);
	CHECK_CONTAINS(err.msg, "does not end in a newline");
	CHECK_EQ_INT(note_sign("a\n\nb\n", 5, name, sk, &out, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "empty line");
	CHECK_EQ_INT(note_sign("\na\n", 3, name, sk, &out, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "empty line");
	CHECK_EQ_INT(note_sign("a\tb\n", 4, name, sk, &out, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "control character");
	CHECK_EQ_INT(note_sign("", 0, name, sk, &out, &err), CG_ERR_ARG);
	CHECK_EQ_INT(note_sign(text, strlen(text), "bad name", sk, &out, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "signer name");
	CHECK_EQ_INT(note_sign(text, strlen(text), "bad+name", sk, &out, &err), CG_ERR_ARG);
	CHECK_EQ_INT(note_sign(text, strlen(text), "", sk, &out, &err), CG_ERR_ARG);
	CHECK(out == NULL);

	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(osk, sizeof(osk));
}

static void
test_verifier_keys(json_t *v)
{
	const char *vkey = vec_str(v, "verifier_key");
	char name[NOTE_NAME_MAX + 1], long_name[NOTE_NAME_MAX + 2], buf[NOTE_NAME_MAX + 80];
	unsigned char pub[32], pk[32], sk[64], key33[33];
	char kb64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];
	size_t nlen, id_off, kb64_off;
	struct cg_err err;
	char *bad;

#define VKEY_BAD(str, want) do { \
	cg_err_clear(&err); \
	CHECK((str) != NULL); \
	if ((str) == NULL) break; \
	CHECK_EQ_INT(note_parse_verifier_key((str), name, pub, &err), CG_ERR_FORMAT); \
	CHECK_CONTAINS(err.msg, (want)); \
	CHECK_STR(name, ""); \
} while (0)

	/* Offsets into the vector's key: name, '+', 8 hex digits, '+', base64. */
	nlen = (size_t)(strchr(vkey, '+') - vkey);
	id_off = nlen + 1;
	kb64_off = id_off + 9;

	VKEY_BAD("", "expected <name>+<key id>+<key>");
	bad = edit(vkey, nlen, strlen(vkey) - nlen, "");
	VKEY_BAD(bad, "expected <name>+<key id>+<key>");
	free(bad);
	bad = edit(vkey, kb64_off - 1, strlen(vkey) - kb64_off + 1, "");
	VKEY_BAD(bad, "expected <name>+<key id>+<key>");
	free(bad);
	bad = edit(vkey, 0, nlen, "");
	VKEY_BAD(bad, "name is empty");
	free(bad);
	bad = edit(vkey, id_off, 1, "");
	VKEY_BAD(bad, "key id is not 8 hex digits");
	free(bad);
	bad = edit(vkey, id_off, 0, "0");
	VKEY_BAD(bad, "key id is not 8 hex digits");
	free(bad);
	bad = edit(vkey, id_off + 7, 1, "g");
	VKEY_BAD(bad, "key id is not 8 hex digits");
	free(bad);
	bad = edit(vkey, id_off + 7, 1, vkey[id_off + 7] == '0' ? "1" : "0");
	VKEY_BAD(bad, "key id does not match the key");
	free(bad);
	bad = edit(vkey, nlen - 1, 1, vkey[nlen - 1] == 'x' ? "y" : "x");
	VKEY_BAD(bad, "key id does not match the key");
	free(bad);
	bad = edit(vkey, 1, 0, " ");
	VKEY_BAD(bad, "name is empty, too long, or contains a space");
	free(bad);
	bad = edit(vkey, kb64_off + 1, 1, "");
	VKEY_BAD(bad, "not valid base64");
	free(bad);
	bad = edit(vkey, kb64_off + 5, 1, "\xc3\xbf");   /* U+00FF: two high bytes for one char */
	VKEY_BAD(bad, "not valid base64");
	free(bad);
	bad = edit(vkey, kb64_off + 5, 2, "\xc3\xbf");
	VKEY_BAD(bad, "not valid base64");
	free(bad);
		bad = concat(vkey, "AAAA");
	VKEY_BAD(bad, "not valid base64");
	free(bad);
	bad = edit(vkey, strlen(vkey) - 1, 1, "");
	VKEY_BAD(bad, "not valid base64");
	free(bad);
	bad = edit(vkey, kb64_off, strlen(vkey) - kb64_off, "");
	VKEY_BAD(bad, "not valid base64");
	free(bad);
	/* Algorithm byte other than 0x01 (Ed25519). */
	CHECK_EQ_INT(note_parse_verifier_key(vkey, name, pub, &err), 0);
	key33[0] = 0x02;
	memcpy(key33 + 1, pub, 32);
	sodium_bin2base64(kb64, sizeof(kb64), key33, sizeof(key33), sodium_base64_VARIANT_ORIGINAL);
	bad = edit(vkey, kb64_off, strlen(vkey) - kb64_off, kb64);
	VKEY_BAD(bad, "unknown signature algorithm");
	free(bad);
	/* A base64 key with 32 bytes only. */
	sodium_bin2base64(kb64, sizeof(kb64), key33, 32, sodium_base64_VARIANT_ORIGINAL);
	bad = edit(vkey, kb64_off, strlen(vkey) - kb64_off, kb64);
	VKEY_BAD(bad, "key has 32 bytes, expected 33");
	free(bad);

	/* A fresh key round-trips; names up to NOTE_NAME_MAX bytes, UTF-8 allowed. */
	crypto_sign_keypair(pk, sk);
	memset(long_name, 'n', NOTE_NAME_MAX);
	long_name[NOTE_NAME_MAX] = '\0';
	CHECK_EQ_INT(note_format_verifier_key(long_name, pk, buf, sizeof(buf)), 0);
	CHECK_EQ_INT(note_parse_verifier_key(buf, name, pub, &err), 0);
	CHECK_STR(name, long_name);
	CHECK(memcmp(pub, pk, 32) == 0);
	long_name[NOTE_NAME_MAX] = 'n';
	long_name[NOTE_NAME_MAX + 1] = '\0';
	CHECK_EQ_INT(note_format_verifier_key(long_name, pk, buf, sizeof(buf)), CG_ERR_ARG);
	CHECK_EQ_INT(note_format_verifier_key("gr\xc3\xbc\xc3\x9f" "e.example", pk, buf, sizeof(buf)), 0);
	CHECK_EQ_INT(note_parse_verifier_key(buf, name, pub, &err), 0);
	CHECK_STR(name, "gr\xc3\xbc\xc3\x9f" "e.example");
	CHECK_EQ_INT(note_format_verifier_key("a\xc2\xa0" "b", pk, buf, sizeof(buf)), CG_ERR_ARG);   /* NBSP */
	sodium_memzero(sk, sizeof(sk));
#undef VKEY_BAD
}

static void
test_checkpoints(void)
{
	struct checkpoint cp, got;
	char body[NOTE_NAME_MAX + 80], bad[512], *signed_cp = NULL;
	char b64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];
	unsigned char pk[32], sk[64], short_root[33];
	struct cg_err err;
	size_t len = 0, text_len = 0;
	static const uint64_t sizes[] = { 0, 1, 7, 1000000, UINT64_MAX };
	size_t i;

	memset(&cp, 0, sizeof(cp));
	strcpy(cp.origin, "crossgate.example/audit");
	randombytes_buf(cp.root, sizeof(cp.root));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cp.size = sizes[i];
		CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &len), 0);
		CHECK_EQ_INT(len, strlen(body));
		CHECK_EQ_INT(checkpoint_parse(body, len, &got, &err), 0);
		CHECK_STR(got.origin, cp.origin);
		CHECK(got.size == cp.size);
		CHECK(memcmp(got.root, cp.root, 32) == 0);
	}
	CHECK(strstr(body, "\n18446744073709551615\n") != NULL);

	/* The body signed as a note, verified, and parsed back. */
	crypto_sign_keypair(pk, sk);
	cp.size = 42;
	CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &len), 0);
	CHECK_EQ_INT(note_sign(body, len, "crossgate.example/audit", sk, &signed_cp, &err), 0);
	if (signed_cp != NULL) {
		CHECK_EQ_INT(note_verify(signed_cp, strlen(signed_cp), "crossgate.example/audit", pk, &text_len, &err), 0);
		CHECK_EQ_INT(text_len, len);
		CHECK_EQ_INT(checkpoint_parse(signed_cp, text_len, &got, &err), 0);
		CHECK(got.size == 42);
		/* The whole note is not a checkpoint body: the blank line is an empty extension. */
		CHECK_EQ_INT(checkpoint_parse(signed_cp, strlen(signed_cp), &got, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "line 4: empty extension line");
	}
	free(signed_cp);
	sodium_memzero(sk, sizeof(sk));

	/* Extension lines are allowed, and skipped. */
	snprintf(bad, sizeof(bad), "%sext one\n\xe2\x80\x94 ext two\n", body);
	CHECK_EQ_INT(checkpoint_parse(bad, strlen(bad), &got, &err), 0);
	CHECK(got.size == 42 && memcmp(got.root, cp.root, 32) == 0);

#define CP_BAD(str, code, want) do { \
	cg_err_clear(&err); \
	memset(&got, 0x55, sizeof(got)); \
	CHECK_EQ_INT(checkpoint_parse((str), strlen(str), &got, &err), (code)); \
	CHECK_CONTAINS(err.msg, (want)); \
	CHECK(got.size == 0 && got.origin[0] == '\0'); \
} while (0)

	sodium_bin2base64(b64, sizeof(b64), cp.root, 32, sodium_base64_VARIANT_ORIGINAL);
	snprintf(bad, sizeof(bad), "o\n007\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "line 2: tree size has a leading zero");
	snprintf(bad, sizeof(bad), "o\n00\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "leading zero");
	snprintf(bad, sizeof(bad), "o\n18446744073709551616\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "line 2: tree size exceeds 2^64-1");
	snprintf(bad, sizeof(bad), "o\n99999999999999999999999\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "exceeds 2^64-1");
	snprintf(bad, sizeof(bad), "o\n-1\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "not a decimal number");
	snprintf(bad, sizeof(bad), "o\n+1\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "not a decimal number");
	snprintf(bad, sizeof(bad), "o\n12 \n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "not a decimal number");
	snprintf(bad, sizeof(bad), "o\n\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "tree size is empty");
	snprintf(bad, sizeof(bad), "\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "line 1: origin is empty");
	snprintf(bad, sizeof(bad), "o\x01x\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "control character");
	CP_BAD("o\n5\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n", CG_ERR_FORMAT, "line 3: root hash is not base64 of 32 bytes");
	CP_BAD("o\n5\nAAAA\n", CG_ERR_FORMAT, "root hash is not base64 of 32 bytes");
	/* libsodium 1.0.18 alone would read a byte >= 0x80 as '/': one root, two spellings. */
	sodium_bin2base64(b64, sizeof(b64), cp.root, 32, sodium_base64_VARIANT_ORIGINAL);
	b64[10] = '\xc7';
	snprintf(bad, sizeof(bad), "o\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "root hash is not base64 of 32 bytes");
	b64[10] = ' ';
	snprintf(bad, sizeof(bad), "o\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "root hash is not base64 of 32 bytes");
	memset(short_root, 0xab, sizeof(short_root));
	sodium_bin2base64(b64, sizeof(b64), short_root, 31, sodium_base64_VARIANT_ORIGINAL);
	snprintf(bad, sizeof(bad), "o\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "line 3: root hash has 31 bytes, expected 32");
	sodium_bin2base64(b64, sizeof(b64), short_root, 33, sodium_base64_VARIANT_ORIGINAL);
	snprintf(bad, sizeof(bad), "o\n5\n%s\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "root hash has 33 bytes, expected 32");
	snprintf(bad, sizeof(bad), "o\n5\n%sAAAA\n", b64);
	CP_BAD(bad, CG_ERR_FORMAT, "root hash is not base64 of 32 bytes");
	CP_BAD("o\n", CG_ERR_FORMAT, "line 2: missing tree size");
	CP_BAD("o\n5\n", CG_ERR_FORMAT, "line 3: missing root hash");
	CP_BAD("", CG_ERR_FORMAT, "does not end in a newline");
	snprintf(bad, sizeof(bad), "%s", body);
	bad[strlen(bad) - 1] = '\0';
	CP_BAD(bad, CG_ERR_FORMAT, "does not end in a newline");
	snprintf(bad, sizeof(bad), "%sext\n\nmore\n", body);
	CP_BAD(bad, CG_ERR_FORMAT, "line 5: empty extension line");
	memset(bad, 'o', sizeof(bad));
	memcpy(bad + NOTE_NAME_MAX + 1, "\n5\n", 4);
	CP_BAD(bad, CG_ERR_FORMAT, "origin is longer than");
#undef CP_BAD

	/* Formatting refuses what parsing would refuse. */
	memset(&cp, 0, sizeof(cp));
	CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &len), CG_ERR_ARG);
	CHECK_EQ_INT(len, 0);
	strcpy(cp.origin, "two\nlines");
	CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &len), CG_ERR_ARG);
	memset(cp.origin, 'o', sizeof(cp.origin));   /* not terminated */
	CHECK_EQ_INT(checkpoint_format(&cp, body, sizeof(body), &len), CG_ERR_ARG);
	strcpy(cp.origin, "o");
	CHECK_EQ_INT(checkpoint_format(&cp, body, 10, &len), CG_ERR_LIMIT);
	CHECK_EQ_INT(len, 0);
}

/* ---- cosignatures (C2SP tlog-cosignature, cosignature/v1) -------------------- */

static void
test_cosignatures(void)
{
	static const char body[] = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
	/* The spec's example line: key id, then the timestamp 1679315147 big-endian, then the signature. */
	static const char spec_b64[] =
	    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
	unsigned char pk[32], sk[64], pk2[32], sk2[64], blob[128], h[32], msg[256], pub[32];
	char line[NOTE_COSIG_LINE_MAX], vkey[NOTE_NAME_MAX + 80], name[NOTE_NAME_MAX + 1], *note = NULL, *both;
	const char *b64;
	struct cg_err err;
	crypto_hash_sha256_state st;
	size_t blob_len = 0, text_len, n;
	uint64_t t, ts = 0;
	uint32_t id;
	int i;

	CHECK_EQ_INT(sodium_base642bin(blob, sizeof(blob), spec_b64, strlen(spec_b64), NULL, &blob_len, NULL,
	    sodium_base64_VARIANT_ORIGINAL), 0);
	CHECK_EQ_INT(blob_len, 4 + 8 + 64);
	for (i = 0; i < 8; i++)
		ts = ts << 8 | blob[4 + i];
	CHECK_EQ_INT(ts, 1679315147);

	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	/* key id = SHA-256(name || "\n" || 0x04 || pub)[:4], computed here independently */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)"witness.example/w1\n\x04", 20);
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	CHECK_EQ_INT(note_cosig_key_id("witness.example/w1", pk), id);
	CHECK(note_cosig_key_id("witness.example/w1", pk) != note_key_id("witness.example/w1", pk));

	cg_err_clear(&err);
	CHECK_EQ_INT(note_cosign(body, strlen(body), "witness.example/w1", sk, 1679315147, line, &err), 0);
	CHECK(strncmp(line, "\xe2\x80\x94 witness.example/w1 ", 23) == 0);
	CHECK(line[strlen(line) - 1] == '\n');
	/* Check the signature by hand: over "cosignature/v1\ntime <t>\n" || body. */
	b64 = line + 23;
	CHECK_EQ_INT(sodium_base642bin(blob, sizeof(blob), b64, strlen(b64) - 1, NULL, &blob_len, NULL,
	    sodium_base64_VARIANT_ORIGINAL), 0);
	CHECK_EQ_INT(blob_len, 76);
	CHECK_EQ_INT((uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3], id);
	for (ts = 0, i = 0; i < 8; i++)
		ts = ts << 8 | blob[4 + i];
	CHECK_EQ_INT(ts, 1679315147);
	n = (size_t)snprintf((char *)msg, sizeof(msg), "cosignature/v1\ntime 1679315147\n%s", body);
	CHECK_EQ_INT(crypto_sign_verify_detached(blob + 12, msg, n, pk), 0);

	CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), line, strlen(line), "witness.example/w1", pk, &t, &err), 0);
	CHECK_EQ_INT(t, 1679315147);
	CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), line, strlen(line) - 1, "witness.example/w1", pk, &t,
	    &err), 0);
	/* another body, key or name */
	CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body) - 2, line, strlen(line), "witness.example/w1", pk, &t,
	    &err), CG_ERR_VERIFY);
	CHECK_CONTAINS(err.msg, "cosignature by witness.example/w1 does not verify");
	CHECK_EQ_INT(t, 0);
	CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), line, strlen(line), "witness.example/w1", pk2, &t,
	    &err), CG_ERR_NOTFOUND);
	CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), line, strlen(line), "witness.example/w2", pk, &t,
	    &err), CG_ERR_NOTFOUND);
	/* the timestamp is signed */
	{
		char bad[NOTE_COSIG_LINE_MAX];

		memcpy(bad, line, sizeof(bad));
		blob[11] ^= 1;
		sodium_bin2base64(bad + 23, sizeof(bad) - 23, blob, 76, sodium_base64_VARIANT_ORIGINAL);
		CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), bad, strlen(bad), "witness.example/w1", pk, &t,
		    &err), CG_ERR_VERIFY);
		blob[11] ^= 1;
		/* malformed lines */
		CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), "- w x\n", 6, "w", pk, &t, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "em dash");
		CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), "\xe2\x80\x94 w !!!!", 10, "w", pk, &t, &err),
		    CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "not valid base64");
		/* a note-style (key id + 64-byte signature) line under the witness's cosig id */
		snprintf(bad, sizeof(bad), "\xe2\x80\x94 witness.example/w1 ");
		memmove(blob + 4, blob + 12, 64);
		sodium_bin2base64(bad + 23, sizeof(bad) - 23, blob, 68, sodium_base64_VARIANT_ORIGINAL);
		CHECK_EQ_INT(note_verify_cosig_line(body, strlen(body), bad, strlen(bad), "witness.example/w1", pk, &t,
		    &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "expected 72");
	}
	CHECK_EQ_INT(note_cosign(body, strlen(body), "bad name", sk, 1, line, &err), CG_ERR_ARG);
	CHECK_EQ_INT(note_cosign(body, strlen(body), "w", sk, (uint64_t)INT64_MAX + 1, line, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "2^63-1");
	CHECK_EQ_INT(note_cosign(body, strlen(body) - 1, "w", sk, 1, line, &err), CG_ERR_ARG);
	CHECK_STR(line, "");

	/* In a signed note, among the log's own signature and other witnesses'. */
	CHECK_EQ_INT(note_sign(body, strlen(body), "example.com/behind-the-sofa", sk2, &note, &err), 0);
	CHECK_EQ_INT(note_cosign(body, strlen(body), "witness.example/w1", sk, 1700000000, line, &err), 0);
	if (note != NULL && (both = malloc(strlen(note) + strlen(line) + 1)) != NULL) {
		strcpy(both, note);
		strcat(both, line);
		CHECK_EQ_INT(note_verify_cosignature(both, strlen(both), "witness.example/w1", pk, &text_len, &t, &err), 0);
		CHECK_EQ_INT(text_len, strlen(body));
		CHECK_EQ_INT(t, 1700000000);
		/* the log's signature still verifies: witnesses' lines are ignored there */
		CHECK_EQ_INT(note_verify(both, strlen(both), "example.com/behind-the-sofa", pk2, &text_len, &err), 0);
		CHECK_EQ_INT(note_verify_cosignature(note, strlen(note), "witness.example/w1", pk, &text_len, &t, &err),
		    CG_ERR_NOTFOUND);
		CHECK_CONTAINS(err.msg, "no cosignature by witness witness.example/w1");
		CHECK_EQ_INT(note_verify_cosignature(both, strlen(both) - 1, "witness.example/w1", pk, &text_len, &t,
		    &err), CG_ERR_FORMAT);
		CHECK_EQ_INT(note_verify_cosignature(body, strlen(body), "witness.example/w1", pk, &text_len, &t, &err),
		    CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "no blank line");
		free(both);
	}
	free(note);

	/* Witness verifier keys: type 0x04, and not interchangeable with note keys. */
	CHECK_EQ_INT(note_format_cosig_key("witness.example/w1", pk, vkey, sizeof(vkey)), 0);
	CHECK_EQ_INT(note_parse_cosig_key(vkey, name, pub, &err), 0);
	CHECK_STR(name, "witness.example/w1");
	CHECK(memcmp(pub, pk, 32) == 0);
	CHECK_EQ_INT(note_parse_verifier_key(vkey, name, pub, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(note_format_verifier_key("witness.example/w1", pk, vkey, sizeof(vkey)), 0);
	CHECK_EQ_INT(note_parse_cosig_key(vkey, name, pub, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "type 0x04");
	CHECK_STR(name, "");
	CHECK_EQ_INT(note_parse_cosig_key("w+0000zzzz+AAAA", name, pub, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "8 hex digits");
	CHECK_EQ_INT(note_parse_cosig_key("nope", name, pub, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "expected <name>+<key id>+<key>");
	CHECK_EQ_INT(note_format_cosig_key("witness.example/w1", pk, vkey, sizeof(vkey)), 0);
	vkey[20] = vkey[20] == '0' ? '1' : '0';
	CHECK_EQ_INT(note_parse_cosig_key(vkey, name, pub, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "key id does not match");
	CHECK_EQ_INT(note_format_cosig_key("a b", pk, vkey, sizeof(vkey)), CG_ERR_ARG);
	CHECK_EQ_INT(note_format_cosig_key("w", pk, vkey, 10), CG_ERR_LIMIT);
	CHECK_STR(vkey, "");
}

int
main(void)
{
	char path[1024];
	json_error_t jerr;
	json_t *v;

	if (sodium_init() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/c2sp_signed_note.json", cgt_vectors_dir());
	v = json_load_file(path, 0, &jerr);
	CHECK(v != NULL);
	if (v == NULL) {
		fprintf(stderr, "%s: %s\n", path, jerr.text);
		CGT_DONE();
	}
	test_vector(v);
	test_verifier_keys(v);
	test_checkpoints();
	test_cosignatures();
	json_decref(v);
	CGT_DONE();
}

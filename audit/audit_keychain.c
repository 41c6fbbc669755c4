/* audit_keychain.c - see audit.h; a cheap look into an event and the signing keys a verifier trusts (audit_int.h) */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <stdio.h>
#include <string.h>

/* ---- a cheap look into an event ----------------------------------------- */


static int
audit_varint(const unsigned char *b, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;
	unsigned int shift;

	for (shift = 0; shift < 64 && *pos < len; shift += 7) {
		unsigned char c = b[(*pos)++];

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

int
audit_view_parse(const unsigned char *b, size_t len, struct audit_view *v)
{
	size_t pos = 0;
	uint64_t tag, x;

	memset(v, 0, sizeof(*v));
	while (pos < len) {
		if (audit_varint(b, len, &pos, &tag) != 0 || tag >> 3 == 0 || tag >> 3 > 536870911)
			return -1;
		switch (tag & 7) {
		case 0:
			if (audit_varint(b, len, &pos, &x) != 0)
				return -1;
			if (tag >> 3 == 1)
				v->seq = x;
			else if (tag >> 3 == 2)
				v->time = (int64_t)x;
			break;
		case 1:
			if (len - pos < 8)
				return -1;
			pos += 8;
			break;
		case 2:
			if (audit_varint(b, len, &pos, &x) != 0 || x > len - pos)
				return -1;
			if (tag >> 3 == 4) {
				v->action = b + pos;
				v->action_len = (size_t)x;
			}
			pos += (size_t)x;
			break;
		case 5:
			if (len - pos < 4)
				return -1;
			pos += 4;
			break;
		default:
			return -1;
		}
		/* seq, time and action with another wire type would not unpack. */
		if ((tag >> 3 == 1 || tag >> 3 == 2) && (tag & 7) != 0)
			return -1;
		if (tag >> 3 == 4 && (tag & 7) != 2)
			return -1;
	}
	return 0;
}

int
audit_view_is(const struct audit_view *v, const char *action)
{
	size_t n = strlen(action);

	return v->action_len == n && v->action != NULL && memcmp(v->action, action, n) == 0;
}

/* ---- the signing keys a verifier trusts ---------------------------------- */

static void
audit_signer_set(struct audit_signer *k, uint64_t from, const unsigned char id[KEYFILE_ID_LEN],
    const unsigned char pub[32])
{
	k->from = from;
	memcpy(k->id, id, KEYFILE_ID_LEN);
	memcpy(k->pub, pub, 32);
	audit_origin(id, k->name);
}

int
audit_keychain_init(struct audit_keychain *kc, const struct keyfile_key *pub, struct cg_err *err)
{
	memset(kc, 0, sizeof(*kc));
	if (pub->type != KEYFILE_ED25519_PUBLIC && pub->type != KEYFILE_ED25519_SECRET)
		return cg_err_set(err, CG_ERR_ARG, "audit verification needs the gateway's Ed25519 public key");
	audit_signer_set(&kc->keys[0], 0, pub->id, pub->pub);
	snprintf(kc->origin, sizeof(kc->origin), "%s", kc->keys[0].name);
	kc->n = 1;
	return 0;
}

/* The key that must sign the checkpoint of tree `size`. */
static const struct audit_signer *
audit_keychain_signer(const struct audit_keychain *kc, uint64_t size)
{
	size_t i = kc->n - 1;

	while (i > 0 && kc->keys[i].from >= size)
		i--;
	return &kc->keys[i];
}

/* The signed text of a note ends at its blank line. */
int
audit_note_text(const char *note, size_t len, size_t *text_len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (note[i] == '\n' && note[i + 1] == '\n') {
			*text_len = i + 1;
			return 0;
		}
	}
	return -1;
}

/*
 * A gateway key's signature on a note: under the log's origin (the key name
 * since key names follow C2SP), or under the key's own name `own`, which
 * logs rotated by earlier versions used after a rotation.  Key ids keep the
 * two keys of a rotation's checkpoint apart under one name.
 */
int
audit_note_verify(const char *note, size_t len, const char *origin, const char *own, const unsigned char pub[32],
    size_t *text_len, struct cg_err *err)
{
	if (note_verify(note, len, origin, pub, text_len, err) == 0)
		return 0;
	if (strcmp(origin, own) == 0)
		return CG_ERR_VERIFY;
	cg_err_clear(err);
	return note_verify(note, len, own, pub, text_len, err) == 0 ? 0 : CG_ERR_VERIFY;
}

int
audit_keychain_check(const struct audit_keychain *kc, const char *note, size_t len, struct checkpoint *cp,
    size_t *text_len, struct cg_err *err)
{
	const struct audit_signer *k;
	struct cg_err sub;
	char hex[2 * KEYFILE_ID_LEN + 1];
	size_t tl, tl2, i;

	uint64_t size;

	memset(cp, 0, sizeof(*cp));
	*text_len = 0;
	cg_err_clear(&sub);
	/* The size (unsigned yet) picks the key; nothing else of the body is used before the signature holds. */
	if (audit_note_text(note, len, &tl) != 0 || checkpoint_parse(note, tl, cp, &sub) != 0) {
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint: %s", sub.msg[0] ? sub.msg : "not a signed note");
	}
	size = cp->size;
	k = audit_keychain_signer(kc, size);
	if (audit_note_verify(note, len, kc->origin, k->name, k->pub, &tl2, &sub) != 0 || tl2 != tl) {
		keyfile_id_hex(k->id, hex);
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu: not signed by gateway key %s, the key "
		    "in force at that size%s: %s", (unsigned long long)size, hex, kc->n > 1 ? " after the verified "
		    "key rotations" : " (no verified key-rotate event announced another key)", sub.msg);
	}
	if (strcmp(cp->origin, kc->origin) != 0) {
		memset(cp, 0, sizeof(*cp));
		return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu: origin is not this gateway's log (%s)",
		    (unsigned long long)size, kc->origin);
	}
	/* A rotation's own checkpoint carries the new key's signature too: the announced key is held. */
	for (i = 1; i < kc->n; i++) {
		if (kc->keys[i].from == cp->size && audit_note_verify(note, len, kc->origin, kc->keys[i].name,
		    kc->keys[i].pub, &tl2, &sub) != 0) {
			keyfile_id_hex(kc->keys[i].id, hex);
			memset(cp, 0, sizeof(*cp));
			return cg_err_set(err, CG_ERR_VERIFY, "checkpoint at size %llu (a key rotation) lacks the "
			    "signature of the new key %s: %s", (unsigned long long)size, hex, sub.msg);
		}
	}
	*text_len = tl;
	return 0;
}

/*
 * Take the key a key-rotate event at `seq` announces (the caller makes sure
 * the event is authentic: verified under the current key).  The event must
 * name the current key as the old one.
 */
int
audit_keychain_apply(struct audit_keychain *kc, uint64_t seq, const unsigned char *event, size_t len,
    struct cg_err *err)
{
	Crossgate__AuditEvent *ev;
	struct keyfile_key *oldk = NULL, *newk = NULL;
	const struct audit_signer *cur = &kc->keys[kc->n - 1];
	struct cg_err sub;
	char hex[2 * KEYFILE_ID_LEN + 1];
	int r;

	if ((ev = crossgate__audit_event__unpack(NULL, len, event)) == NULL)
		return cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu is not a valid audit event",
		    (unsigned long long)seq);
	cg_err_clear(&sub);
	if (strcmp(ev->action, AUDIT_ROTATE_ACTION) != 0 || ev->n_public_keys != 2) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu does not carry the old and the new public "
		    "key", (unsigned long long)seq);
		goto out;
	}
	if (keyfile_parse_public_line(ev->public_keys[0], strlen(ev->public_keys[0]), KEYFILE_ED25519_PUBLIC, &oldk,
	    &sub) != 0 || keyfile_parse_public_line(ev->public_keys[1], strlen(ev->public_keys[1]),
	    KEYFILE_ED25519_PUBLIC, &newk, &sub) != 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu: %s", (unsigned long long)seq, sub.msg);
		goto out;
	}
	if (memcmp(oldk->id, cur->id, KEYFILE_ID_LEN) != 0 || memcmp(oldk->pub, cur->pub, 32) != 0) {
		keyfile_id_hex(cur->id, hex);
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu rotates another key than %s, the key in force",
		    (unsigned long long)seq, hex);
		goto out;
	}
	if (memcmp(newk->pub, cur->pub, 32) == 0) {
		r = cg_err_set(err, CG_ERR_VERIFY, "key-rotate event %llu rotates to the same key",
		    (unsigned long long)seq);
		goto out;
	}
	if (kc->n > AUDIT_KEYS_MAX || seq >= UINT64_MAX - 1 || seq + 1 <= cur->from) {
		r = cg_err_set(err, CG_ERR_LIMIT, "key-rotate event %llu: more than %d rotations, or out of order",
		    (unsigned long long)seq, AUDIT_KEYS_MAX);
		goto out;
	}
	audit_signer_set(&kc->keys[kc->n++], seq + 1, newk->id, newk->pub);
	r = 0;
out:
	keyfile_free(oldk);
	keyfile_free(newk);
	crossgate__audit_event__free_unpacked(ev, NULL);
	return r;
}


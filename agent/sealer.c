/* sealer.c - see sealer.h */
#include "agent/sealer.h"

#include <string.h>
#include <sodium.h>

#include "crypto/seal.h"
#include "base/secmem.h"

int
sealer_check_keys(const struct policy_partner *pp, const struct keyfile_key *match,
    const struct keyfile_key *sign, const struct keyfile_key *gateway, const char *what, struct cg_err *err)
{
	if (match->type != KEYFILE_MATCH || sign->type != KEYFILE_ED25519_SECRET ||
	    gateway->type != KEYFILE_X25519_PUBLIC)
		return cg_err_set(err, CG_ERR_ARG, "wrong key types for %s", what);
	if (memcmp(sign->id, pp->signing_key_id, KEYFILE_ID_LEN) != 0)
		return cg_err_set(err, CG_ERR_POLICY, "the signing key is not the one the policy names for partner "
		    "'%s'", pp->id);
	return 0;
}

int
sealer_open(struct sealer *s, const char *output, const struct policy *pol, const struct policy_partner *pp,
    const struct keyfile_key *sign, const struct keyfile_key *gateway, uint32_t kind, int64_t created_at,
    struct cg_err *err)
{
	Crossgate__BatchHeader hdr = CROSSGATE__BATCH_HEADER__INIT;
	unsigned char wrapped[SEAL_WRAPPED_LEN];
	int r;

	memset(s, 0, sizeof(*s));
	if ((s->key = secmem_alloc(SEAL_KEY_LEN)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	randombytes_buf(s->key, SEAL_KEY_LEN);
	randombytes_buf(s->batch_id, sizeof(s->batch_id));
	if ((r = seal_wrap_key(s->key, gateway->pub, wrapped)) != 0)
		return cg_err_set(err, r, "cannot seal the batch key to the gateway's key");
	hdr.version = BATCH_VERSION;
	hdr.kind = kind;
	hdr.partner_id = (char *)pp->id;
	hdr.batch_id.data = s->batch_id;
	hdr.batch_id.len = sizeof(s->batch_id);
	hdr.gateway_key_id.data = (uint8_t *)gateway->id;
	hdr.gateway_key_id.len = KEYFILE_ID_LEN;
	hdr.signer_key_id.data = (uint8_t *)sign->id;
	hdr.signer_key_id.len = KEYFILE_ID_LEN;
	hdr.wrapped_key.data = wrapped;
	hdr.wrapped_key.len = sizeof(wrapped);
	hdr.aead = CROSSGATE__AEAD__AEAD_CHACHA20POLY1305_IETF;
	hdr.created_at = created_at;
	hdr.policy_hash.data = (uint8_t *)pol->hash;
	hdr.policy_hash.len = sizeof(pol->hash);
	return batch_writer_open(output, &hdr, sign->key, &s->w, err);
}

void
sealer_close(struct sealer *s)
{
	batch_writer_free(s->w);
	s->w = NULL;
	secmem_free(s->key, SEAL_KEY_LEN);
	s->key = NULL;
}

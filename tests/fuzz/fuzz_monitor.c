/*
 * fuzz_monitor.c - the monitor of privilege separation (gateway/monitor.h)
 * against a compromised worker: the input as one request to monitor_answer(),
 * whose answer must decode and, when it is not a refusal, carry exactly what
 * the request's op returns (a key of 32 bytes, a sealed key of 48, 32 bytes
 * per token, a note, a MAC of 32); then as a stream of frames to monitor_serve().  The
 * keys are fixed (seeds from labels), so runs repeat.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sodium.h>

#include "gateway/monitor.h"
#include "proto/monitor.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keyfile_key enc, sign, storage;
static unsigned char enc_sk[32], sign_sk[64], storage_k[32];
static struct monitor_keys keys;

static void
fuzz_keys(void)
{
	unsigned char seed[32];

	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(seed, (const unsigned char *)"fuzz monitor enc", 16);
	crypto_box_seed_keypair(enc.pub, enc_sk, seed);
	enc.type = KEYFILE_X25519_SECRET;
	enc.key = enc_sk;
	enc.key_len = 32;
	crypto_hash_sha256(seed, (const unsigned char *)"fuzz monitor sign", 17);
	crypto_sign_seed_keypair(sign.pub, sign_sk, seed);
	sign.type = KEYFILE_ED25519_SECRET;
	sign.key = sign_sk;
	sign.key_len = 64;
	crypto_hash_sha256(storage_k, (const unsigned char *)"fuzz monitor storage", 20);
	storage.type = KEYFILE_STORAGE;
	storage.key = storage_k;
	storage.key_len = 32;
	keys.enc = &enc;
	keys.sign = &sign;
	keys.storage = &storage;
}

static void
check_answer(const uint8_t *data, size_t size)
{
	Crossgate__Monitor__MonitorRequest *q;
	Crossgate__Monitor__MonitorResponse *r;
	unsigned char *resp = NULL;
	size_t resp_len = 0;
	int refused = -1;

	if (monitor_answer(&keys, data, size, &resp, &resp_len, &refused) != 0)
		return;
	if ((r = crossgate__monitor__monitor_response__unpack(NULL, resp_len, resp)) == NULL)
		abort();   /* the worker could not read the answer */
	if (r->ok == (refused != 0) || (!r->ok && (r->error == NULL || r->error[0] == '\0' || r->code >= 0)))
		abort();
	if (r->ok) {
		if ((q = crossgate__monitor__monitor_request__unpack(NULL, size, data)) == NULL)
			abort();   /* answered a request that does not decode */
		switch (q->op) {
		case CROSSGATE__MONITOR__OP__UNWRAP_BATCH_KEY:
		case CROSSGATE__MONITOR__OP__STORAGE_UNWRAP:
			if (r->key.len != 32 || r->wrapped.len || r->tombstones.len)
				abort();
			break;
		case CROSSGATE__MONITOR__OP__STORAGE_WRAP:
			if (r->wrapped.len != 48 || r->key.len)
				abort();
			break;
		case CROSSGATE__MONITOR__OP__TOMBSTONES:
			if (r->tombstones.len != 32 * q->kinds.len || q->kinds.len == 0 || r->key.len)
				abort();
			break;
		case CROSSGATE__MONITOR__OP__REFUSAL_MAC:
			if (r->mac.len != 32 || r->key.len)
				abort();
			break;
		case CROSSGATE__MONITOR__OP__SIGN_CHECKPOINT:
			if (r->note == NULL || strncmp(r->note, (const char *)q->checkpoint.data, q->checkpoint.len) != 0)
				abort();
			break;
		default:
			abort();   /* an unknown op answered */
		}
		crossgate__monitor__monitor_request__free_unpacked(q, NULL);
	}
	crossgate__monitor__monitor_response__free_unpacked(r, NULL);
	free(resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_err err;
	uint64_t served = 0;
	int fds[2];

	if (keys.enc == NULL)
		fuzz_keys();
	check_answer(data, size);
	/* as frames on the channel: the answers stay in the socket buffer, so keep inputs small */
	if (size > 32 * 1024 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		return 0;
	if (write(fds[1], data, size) == (ssize_t)size) {
		shutdown(fds[1], SHUT_WR);
		(void)monitor_serve(&keys, fds[0], &served, &err);
	}
	close(fds[0]);
	close(fds[1]);
	return 0;
}

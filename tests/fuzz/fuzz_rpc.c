/*
 * fuzz_rpc.c - the network protocol's decoders: the input as one Request and
 * one Response message (what the server and the clients decode), then as a
 * stream of frames under the server's pre-authorization cap, each frame
 * decoded as a Request, a Response and the BatchHeader a push starts with.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/frame.h"
#include "net/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode(const uint8_t *p, size_t n)
{
	Crossgate__Request *q = NULL;
	Crossgate__Response *r = NULL;
	Crossgate__BatchHeader *h;
	struct cg_err err;

	if (rpc_request_parse(p, n, &q, &err) == 0) {
		(void)rpc_op_name(q);
		crossgate__request__free_unpacked(q, NULL);
	}
	if (rpc_response_parse(p, n, &r, &err) == 0)
		crossgate__response__free_unpacked(r, NULL);
	if ((h = crossgate__batch_header__unpack(NULL, n, p)) != NULL) {
		(void)rpc_name_ok(h->partner_id);
		crossgate__batch_header__free_unpacked(h, NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p;
	size_t plen, used, off = 0;
	struct cg_err err;

	decode(data, size);
	while (off < size && frame_parse(data + off, size - off, 16384, &p, &plen, &used, &err) == 0) {
		decode(p, plen);
		off += used;
	}
	return 0;
}

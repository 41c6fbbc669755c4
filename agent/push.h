/*
 * push.h - `crossgate agent push`: send a batch file to the gateway, exactly
 * once.
 *
 * The gateway answers only after the batch is committed, so an answer means
 * committed (or DUPLICATE: committed by an earlier attempt).  When the
 * connection fails before an answer (gateway down or restarting, network
 * drop, timeout, "unavailable"), the same file is pushed again after a
 * backoff (doubling from backoff_ms up to backoff_max_ms, with jitter); a
 * batch committed by the attempt whose answer was lost comes back as
 * DUPLICATE, so retrying can never count a batch twice.  Refusals and
 * rejections are final.
 */
#ifndef CG_PUSH_H
#define CG_PUSH_H

#include <stdint.h>
#include <stdio.h>
#include "net/client.h"
#include "base/err.h"

#define PUSH_RETRIES_DEFAULT 8
#define PUSH_BACKOFF_MS_DEFAULT 200
#define PUSH_BACKOFF_MAX_MS_DEFAULT 10000

struct push_opts {
	struct client_opts client;
	unsigned retries;                   /* attempts after the first */
	unsigned backoff_ms, backoff_max_ms;
	FILE *log;                          /* one line per failed attempt (NULL: quiet) */
};

struct push_result {
	int duplicate;                      /* committed before this push */
	uint64_t records;
	uint64_t bytes;
	unsigned attempts;
	char partner[65];
	unsigned char batch_id[16];
	double seconds;                     /* from the first attempt to the answer */
};

/* Fill in the defaults. */
void push_opts_default(struct push_opts *o) CG_NONNULL(1);

int push_batch(const struct push_opts *o, const char *path, struct push_result *res, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

#endif

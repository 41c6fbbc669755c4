/*
 * b64.h - strict standard base64 decoding (RFC 4648 §4: padded, canonical).
 *
 * libsodium 1.0.18's decoder reads every byte >= 0x80 as '/', so one value
 * would have many spellings.  The alphabet is checked here before libsodium
 * decodes, so that a key or a checkpoint is one byte string.
 */
#ifndef CG_B64_H
#define CG_B64_H

#include <stddef.h>

/* 0 on success with *out_len set; -1 (and *out_len = 0) on anything else. */
int b64_decode_strict(const char *in, size_t in_len, unsigned char *out, size_t out_max, size_t *out_len);

#endif

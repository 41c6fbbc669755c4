/* frame.c - see frame.h */
#include "proto/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
frame_header(size_t len, unsigned char hdr[FRAME_HDR_LEN])
{
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
}

static size_t
frame_len_of(const unsigned char hdr[FRAME_HDR_LEN])
{
	return ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
}

int
frame_parse(const unsigned char *buf, size_t len, size_t max, const unsigned char **payload,
    size_t *payload_len, size_t *consumed, struct cg_err *err)
{
	size_t n;

	*payload = NULL;
	*payload_len = 0;
	*consumed = 0;
	if (len < FRAME_HDR_LEN)
		return cg_err_set(err, CG_ERR_INCOMPLETE, "frame header cut short (%zu of 4 bytes)", len);
	n = frame_len_of(buf);
	if (n > max)
		return cg_err_set(err, CG_ERR_LIMIT, "frame of %zu bytes exceeds the limit of %zu", n, max);
	if (len - FRAME_HDR_LEN < n)
		return cg_err_set(err, CG_ERR_INCOMPLETE, "frame cut short (%zu of %zu bytes)",
		    len - FRAME_HDR_LEN, n);
	*payload = buf + FRAME_HDR_LEN;
	*payload_len = n;
	*consumed = FRAME_HDR_LEN + n;
	return 0;
}

int
frame_read(FILE *f, size_t max, unsigned char **buf, size_t *cap, size_t *len, uint64_t *offset,
    struct cg_err *err)
{
	unsigned char hdr[FRAME_HDR_LEN];
	size_t got, n;

	*len = 0;
	got = fread(hdr, 1, sizeof(hdr), f);
	if (got == 0 && feof(f))
		return 0;
	if (got < sizeof(hdr)) {
		if (ferror(f))
			return cg_err_set(err, CG_ERR_IO, "offset %llu: read failed: %s",
			    (unsigned long long)*offset, strerror(errno));
		return cg_err_set(err, CG_ERR_INCOMPLETE, "offset %llu: frame header cut short",
		    (unsigned long long)*offset);
	}
	n = frame_len_of(hdr);
	if (n > max)
		return cg_err_set(err, CG_ERR_LIMIT, "offset %llu: frame of %zu bytes exceeds the limit of %zu",
		    (unsigned long long)*offset, n, max);
	if (n > *cap || *buf == NULL) {
		size_t ncap = n < 256 ? 256 : n;
		unsigned char *nb = realloc(*buf, ncap);
		if (nb == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory for a %zu-byte frame", n);
		*buf = nb;
		*cap = ncap;
	}
	got = fread(*buf, 1, n, f);
	if (got < n) {
		if (ferror(f))
			return cg_err_set(err, CG_ERR_IO, "offset %llu: read failed: %s",
			    (unsigned long long)*offset, strerror(errno));
		return cg_err_set(err, CG_ERR_INCOMPLETE, "offset %llu: frame cut short (%zu of %zu bytes)",
		    (unsigned long long)*offset, got, n);
	}
	*offset += FRAME_HDR_LEN + n;
	*len = n;
	return 1;
}

int
frame_write(FILE *f, const unsigned char *payload, size_t len, struct cg_err *err)
{
	unsigned char hdr[FRAME_HDR_LEN];

	if (len > FRAME_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "frame of %zu bytes exceeds the limit of %u", len, FRAME_MAX);
	frame_header(len, hdr);
	if (fwrite(hdr, 1, sizeof(hdr), f) != sizeof(hdr) ||
	    (len > 0 && fwrite(payload, 1, len, f) != len))
		return cg_err_set(err, CG_ERR_IO, "write failed: %s", strerror(errno));
	return 0;
}

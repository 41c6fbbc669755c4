/* test_frame.c - length-prefixed frames: parsing from memory, reading and writing streams. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/frame.h"
#include "tests/unit/cgtest.h"

static void
test_header_round_trip(void)
{
	static const size_t lens[] = { 0, 1, 255, 256, 65535, 65536, 0x00abcdef, FRAME_MAX };
	unsigned char buf[FRAME_HDR_LEN + 8], hdr[FRAME_HDR_LEN];
	const unsigned char *p;
	size_t i, plen, used;
	struct cg_err err = { 0 };

	frame_header(0x01020304, hdr);
	CHECK(hdr[0] == 1 && hdr[1] == 2 && hdr[2] == 3 && hdr[3] == 4);   /* big-endian */
	frame_header(FRAME_MAX, hdr);
	CHECK(hdr[0] == 0x01 && hdr[1] == 0 && hdr[2] == 0 && hdr[3] == 0);

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		frame_header(lens[i], buf);
		/* Only the header: a large frame must report INCOMPLETE, a zero one succeeds. */
		int r = frame_parse(buf, FRAME_HDR_LEN, FRAME_MAX, &p, &plen, &used, &err);
		if (lens[i] == 0) {
			CHECK_EQ_INT(r, 0);
			CHECK_EQ_INT(plen, 0);
			CHECK_EQ_INT(used, FRAME_HDR_LEN);
			CHECK(p == buf + FRAME_HDR_LEN);
		} else {
			char want[64];
			/* The decoded length shows in the message: it round-trips. */
			snprintf(want, sizeof(want), "frame cut short (0 of %zu bytes)", lens[i]);
			CHECK_EQ_INT(r, CG_ERR_INCOMPLETE);
			CHECK_STR(err.msg, want);
		}
	}

	/* A payload parses back to itself, pointing into the buffer. */
	frame_header(5, buf);
	memcpy(buf + FRAME_HDR_LEN, "hello", 5);
	CHECK_EQ_INT(frame_parse(buf, FRAME_HDR_LEN + 5, 5, &p, &plen, &used, &err), 0);
	CHECK(p == buf + FRAME_HDR_LEN);
	CHECK_EQ_INT(plen, 5);
	CHECK_EQ_INT(used, 9);
	CHECK(memcmp(p, "hello", 5) == 0);
}

/* Out-parameters are cleared on failure: nothing points into a rejected buffer. */
static void
expect_parse_fail(const unsigned char *buf, size_t len, size_t max, int code, const char *msg)
{
	const unsigned char *p = (const unsigned char *)"junk";
	size_t plen = 77, used = 88;
	struct cg_err err = { 0 };

	CHECK_EQ_INT(frame_parse(buf, len, max, &p, &plen, &used, &err), code);
	CHECK_EQ_INT(err.code, code);
	CHECK_CONTAINS(err.msg, msg);
	CHECK(p == NULL);
	CHECK_EQ_INT(plen, 0);
	CHECK_EQ_INT(used, 0);
}

static void
test_parse(void)
{
	unsigned char buf[64];
	const unsigned char *p;
	size_t plen, used;
	struct cg_err err = { 0 };

	memset(buf, 0, sizeof(buf));
	expect_parse_fail(buf, 0, 100, CG_ERR_INCOMPLETE, "frame header cut short (0 of 4 bytes)");
	expect_parse_fail(buf, 1, 100, CG_ERR_INCOMPLETE, "frame header cut short (1 of 4 bytes)");
	expect_parse_fail(buf, 2, 100, CG_ERR_INCOMPLETE, "frame header cut short (2 of 4 bytes)");
	expect_parse_fail(buf, 3, 100, CG_ERR_INCOMPLETE, "frame header cut short (3 of 4 bytes)");

	/* The length is checked against the limit before the payload is looked for. */
	frame_header(101, buf);
	expect_parse_fail(buf, FRAME_HDR_LEN, 100, CG_ERR_LIMIT,
	    "frame of 101 bytes exceeds the limit of 100");
	expect_parse_fail(buf, sizeof(buf), 100, CG_ERR_LIMIT, "exceeds the limit of 100");
	buf[0] = buf[1] = buf[2] = buf[3] = 0xff;
	expect_parse_fail(buf, FRAME_HDR_LEN, FRAME_MAX, CG_ERR_LIMIT, "frame of 4294967295 bytes");

	/* Payload cut short by one byte, and by all of it. */
	frame_header(10, buf);
	expect_parse_fail(buf, FRAME_HDR_LEN + 9, 100, CG_ERR_INCOMPLETE, "frame cut short (9 of 10 bytes)");
	expect_parse_fail(buf, FRAME_HDR_LEN, 100, CG_ERR_INCOMPLETE, "frame cut short (0 of 10 bytes)");

	/* Exact size, and the limit itself is allowed. */
	memset(buf + FRAME_HDR_LEN, 0x5a, 10);
	CHECK_EQ_INT(frame_parse(buf, FRAME_HDR_LEN + 10, 10, &p, &plen, &used, &err), 0);
	CHECK_EQ_INT(plen, 10);
	CHECK_EQ_INT(used, FRAME_HDR_LEN + 10);
	CHECK(p == buf + FRAME_HDR_LEN);
	/* Bytes after the frame are the next frame's business. */
	CHECK_EQ_INT(frame_parse(buf, sizeof(buf), 10, &p, &plen, &used, &err), 0);
	CHECK_EQ_INT(used, FRAME_HDR_LEN + 10);

	/* Zero-length frame, even with a zero limit. */
	frame_header(0, buf);
	CHECK_EQ_INT(frame_parse(buf, FRAME_HDR_LEN, 0, &p, &plen, &used, &err), 0);
	CHECK_EQ_INT(plen, 0);
	CHECK_EQ_INT(used, FRAME_HDR_LEN);

	/* A NULL err is allowed. */
	CHECK_EQ_INT(frame_parse(buf, 2, 0, &p, &plen, &used, NULL), CG_ERR_INCOMPLETE);

	/* Walk two back-to-back frames. */
	frame_header(3, buf);
	memcpy(buf + 4, "abc", 3);
	frame_header(2, buf + 7);
	memcpy(buf + 11, "de", 2);
	CHECK_EQ_INT(frame_parse(buf, 13, 100, &p, &plen, &used, &err), 0);
	CHECK(plen == 3 && memcmp(p, "abc", 3) == 0);
	CHECK_EQ_INT(frame_parse(buf + used, 13 - used, 100, &p, &plen, &used, &err), 0);
	CHECK(plen == 2 && memcmp(p, "de", 2) == 0);
	CHECK_EQ_INT(used, 6);
}

/* A stream holding exactly these bytes, positioned at the start. */
static FILE *
stream_of(const unsigned char *bytes, size_t n)
{
	FILE *f = tmpfile();

	if (f == NULL)
		return NULL;
	if ((n > 0 && fwrite(bytes, 1, n, f) != n) || fflush(f) != 0) {
		fclose(f);
		return NULL;
	}
	rewind(f);
	return f;
}

static void
test_read_write(void)
{
	unsigned char big[1000], *buf = NULL;
	size_t cap = 0, len = 99, i;
	uint64_t off = 0;
	struct cg_err err = { 0 };
	FILE *f = tmpfile();

	CHECK(f != NULL);
	if (f == NULL)
		return;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 1);
	CHECK_EQ_INT(frame_write(f, (const unsigned char *)"first", 5, &err), 0);
	CHECK_EQ_INT(frame_write(f, NULL, 0, &err), 0);           /* an empty payload */
	CHECK_EQ_INT(frame_write(f, big, sizeof(big), &err), 0);
	CHECK_EQ_INT(frame_write(f, (const unsigned char *)"xy", 2, NULL), 0);
	CHECK_EQ_INT(ftell(f), 4 * FRAME_HDR_LEN + 5 + 0 + 1000 + 2);
	rewind(f);

	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 1);
	CHECK_EQ_INT(len, 5);
	CHECK(buf != NULL && memcmp(buf, "first", 5) == 0);
	CHECK_EQ_INT(off, 9);
	CHECK_EQ_INT(cap, 256);                 /* small frames share a minimum buffer */

	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 1);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(off, 13);
	CHECK_EQ_INT(cap, 256);

	/* The buffer grows for a larger frame; the limit itself is allowed. */
	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 1);
	CHECK_EQ_INT(len, 1000);
	CHECK(cap >= 1000);
	CHECK(buf != NULL && memcmp(buf, big, 1000) == 0);
	CHECK_EQ_INT(off, 13 + 4 + 1000);

	/* ...and is reused, not shrunk, for a smaller one. */
	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 1);
	CHECK_EQ_INT(len, 2);
	CHECK(cap >= 1000);
	CHECK(memcmp(buf, "xy", 2) == 0);
	CHECK_EQ_INT(off, 1017 + 6);

	/* A clean end of input, repeatedly. */
	len = 99;
	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(off, 1023);
	CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 0);
	free(buf);
	fclose(f);

	/* Nothing at all is a clean end too, and allocates nothing. */
	f = stream_of(NULL, 0);
	CHECK(f != NULL);
	if (f != NULL) {
		buf = NULL;
		cap = 0;
		off = 0;
		CHECK_EQ_INT(frame_read(f, 1000, &buf, &cap, &len, &off, &err), 0);
		CHECK(buf == NULL);
		CHECK_EQ_INT(off, 0);
		fclose(f);
	}
}

/* Read frames from `bytes` until something other than 1; return it with the message. */
static int
read_all(const unsigned char *bytes, size_t n, size_t max, int *frames, uint64_t *off, struct cg_err *err)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	FILE *f = stream_of(bytes, n);
	int r;

	*frames = 0;
	*off = 0;
	if (f == NULL)
		return CG_ERR_IO;
	while ((r = frame_read(f, max, &buf, &cap, &len, off, err)) == 1)
		(*frames)++;
	free(buf);
	fclose(f);
	return r;
}

static void
test_read_truncated(void)
{
	unsigned char bytes[64];
	uint64_t off;
	int frames;
	size_t cut;
	struct cg_err err = { 0 };

	/* One whole 5-byte frame (9 bytes), then a second frame of 10 bytes. */
	frame_header(5, bytes);
	memcpy(bytes + 4, "abcde", 5);
	frame_header(10, bytes + 9);
	memset(bytes + 13, 'z', 10);

	CHECK_EQ_INT(read_all(bytes, 23, 100, &frames, &off, &err), 0);
	CHECK_EQ_INT(frames, 2);
	CHECK_EQ_INT(off, 23);

	/* EOF inside the second header: the message names where that frame began. */
	for (cut = 10; cut < 13; cut++) {
		cg_err_clear(&err);
		CHECK_EQ_INT(read_all(bytes, cut, 100, &frames, &off, &err), CG_ERR_INCOMPLETE);
		CHECK_EQ_INT(frames, 1);
		CHECK_EQ_INT(err.code, CG_ERR_INCOMPLETE);
		CHECK_STR(err.msg, "offset 9: frame header cut short");
	}
	/* EOF inside the first header. */
	CHECK_EQ_INT(read_all(bytes, 3, 100, &frames, &off, &err), CG_ERR_INCOMPLETE);
	CHECK_EQ_INT(frames, 0);
	CHECK_STR(err.msg, "offset 0: frame header cut short");

	/* EOF inside the second payload, including right after its header. */
	CHECK_EQ_INT(read_all(bytes, 16, 100, &frames, &off, &err), CG_ERR_INCOMPLETE);
	CHECK_EQ_INT(frames, 1);
	CHECK_STR(err.msg, "offset 9: frame cut short (3 of 10 bytes)");
	CHECK_EQ_INT(read_all(bytes, 13, 100, &frames, &off, &err), CG_ERR_INCOMPLETE);
	CHECK_STR(err.msg, "offset 9: frame cut short (0 of 10 bytes)");
	CHECK_EQ_INT(read_all(bytes, 22, 100, &frames, &off, &err), CG_ERR_INCOMPLETE);
	CHECK_STR(err.msg, "offset 9: frame cut short (9 of 10 bytes)");

	/* Over the limit: refused from the header alone, with the offset. */
	CHECK_EQ_INT(read_all(bytes, 23, 9, &frames, &off, &err), CG_ERR_LIMIT);
	CHECK_EQ_INT(frames, 1);
	CHECK_STR(err.msg, "offset 9: frame of 10 bytes exceeds the limit of 9");
	CHECK_EQ_INT(read_all(bytes, 13, 9, &frames, &off, &err), CG_ERR_LIMIT);
}

static void
test_read_limit_no_alloc(void)
{
	unsigned char hdr[FRAME_HDR_LEN], *buf = NULL;
	size_t cap = 0, len = 5;
	uint64_t off = 0;
	struct cg_err err = { 0 };
	FILE *f;

	/* A hostile 4 GiB length must not allocate anything. */
	hdr[0] = hdr[1] = hdr[2] = hdr[3] = 0xff;
	f = stream_of(hdr, sizeof(hdr));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_EQ_INT(frame_read(f, FRAME_MAX, &buf, &cap, &len, &off, &err), CG_ERR_LIMIT);
	CHECK(buf == NULL);
	CHECK_EQ_INT(cap, 0);
	CHECK_EQ_INT(len, 0);
	CHECK_CONTAINS(err.msg, "offset 0: frame of 4294967295 bytes exceeds the limit of 16777216");
	fclose(f);
}

static void
test_io_errors(void)
{
	unsigned char mem[16] = { 0 }, *buf = NULL;
	size_t cap = 0, len;
	uint64_t off = 0;
	struct cg_err err = { 0 };
	FILE *f;

	/* Writing to a read-only stream is an I/O error. */
	f = fmemopen(mem, sizeof(mem), "r");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_EQ_INT(frame_write(f, (const unsigned char *)"abc", 3, &err), CG_ERR_IO);
		CHECK_CONTAINS(err.msg, "write failed");
		fclose(f);
	}
	/* Reading from a write-only stream is an I/O error, not a clean end. */
	f = fopen("/dev/null", "w");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK_EQ_INT(frame_read(f, 100, &buf, &cap, &len, &off, &err), CG_ERR_IO);
		CHECK_CONTAINS(err.msg, "offset 0: read failed");
		fclose(f);
	}
	free(buf);
}

static void
test_write_limit(void)
{
	unsigned char *payload = calloc(1, (size_t)FRAME_MAX + 1), *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t off = 0;
	struct cg_err err = { 0 };
	FILE *f = tmpfile();

	CHECK(payload != NULL && f != NULL);
	if (payload == NULL || f == NULL)
		goto out;
	payload[0] = 0x11;
	payload[FRAME_MAX - 1] = 0x22;
	CHECK_EQ_INT(frame_write(f, payload, (size_t)FRAME_MAX + 1, &err), CG_ERR_LIMIT);
	CHECK_STR(err.msg, "frame of 16777217 bytes exceeds the limit of 16777216");
	CHECK_EQ_INT(ftell(f), 0);            /* nothing was written */

	/* FRAME_MAX itself is written and read back. */
	CHECK_EQ_INT(frame_write(f, payload, FRAME_MAX, &err), 0);
	CHECK_EQ_INT(ftell(f), FRAME_HDR_LEN + FRAME_MAX);
	rewind(f);
	CHECK_EQ_INT(frame_read(f, FRAME_MAX, &buf, &cap, &len, &off, &err), 1);
	CHECK_EQ_INT(len, FRAME_MAX);
	CHECK(buf != NULL && buf[0] == 0x11 && buf[FRAME_MAX - 1] == 0x22);
	CHECK_EQ_INT(off, FRAME_HDR_LEN + FRAME_MAX);
	/* The same file with a smaller limit is refused. */
	rewind(f);
	off = 0;
	CHECK_EQ_INT(frame_read(f, FRAME_MAX - 1, &buf, &cap, &len, &off, &err), CG_ERR_LIMIT);
out:
	free(buf);
	free(payload);
	if (f != NULL)
		fclose(f);
}

int
main(void)
{
	test_header_round_trip();
	test_parse();
	test_read_write();
	test_read_truncated();
	test_read_limit_no_alloc();
	test_io_errors();
	test_write_limit();
	CGT_DONE();
}

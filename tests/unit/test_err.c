/* test_err.c - the one error type: codes, messages, prefixes. */
#include <string.h>

#include "base/err.h"
#include "tests/unit/cgtest.h"

static void
test_strerror(void)
{
	static const struct {
		int code;
		const char *text;
	} names[] = {
		{ CG_OK, "success" },
		{ CG_ERR_INTERNAL, "internal error" },
		{ CG_ERR_NOMEM, "out of memory" },
		{ CG_ERR_IO, "input/output error" },
		{ CG_ERR_FORMAT, "malformed input" },
		{ CG_ERR_CRYPTO, "verification failed" },
		{ CG_ERR_POLICY, "refused by policy" },
		{ CG_ERR_DUPLICATE, "duplicate" },
		{ CG_ERR_PERM, "unsafe permissions" },
		{ CG_ERR_ARG, "invalid argument" },
		{ CG_ERR_LIMIT, "limit exceeded" },
		{ CG_ERR_DB, "database error" },
		{ CG_ERR_VERIFY, "audit log verification failed" },
		{ CG_ERR_INCOMPLETE, "truncated input" },
		{ CG_ERR_NOTFOUND, "not found" },
	};
	size_t i, j;

	CHECK_EQ_INT(sizeof(names) / sizeof(names[0]), 1 - CG_ERR_MIN);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK_STR(cg_strerror(names[i].code), names[i].text);
	/* Each code has its own text, so a user can tell failures apart. */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (j = i + 1; j < sizeof(names) / sizeof(names[0]); j++)
			CHECK(strcmp(cg_strerror(names[i].code), cg_strerror(names[j].code)) != 0);
	CHECK_STR(cg_strerror(CG_ERR_MIN - 1), "unknown error");
	CHECK_STR(cg_strerror(-1000), "unknown error");
	CHECK_STR(cg_strerror(1), "unknown error");
	CHECK_STR(cg_strerror(-2147483647 - 1), "unknown error");
}

static void
test_set(void)
{
	struct cg_err err = { 0 };
	char longarg[2 * CG_ERR_MSG_MAX];

	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_FORMAT, "%s:%zu: bad quote", "in.csv", (size_t)12), CG_ERR_FORMAT);
	CHECK_EQ_INT(err.code, CG_ERR_FORMAT);
	CHECK_STR(err.msg, "in.csv:12: bad quote");

	/* The innermost failure overwrites what was there. */
	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_IO, "short"), CG_ERR_IO);
	CHECK_EQ_INT(err.code, CG_ERR_IO);
	CHECK_STR(err.msg, "short");

	/* A message longer than the buffer is cut, and stays a string. */
	memset(longarg, 'x', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_LIMIT, "big %s", longarg), CG_ERR_LIMIT);
	CHECK_EQ_INT(strlen(err.msg), CG_ERR_MSG_MAX - 1);
	CHECK(strncmp(err.msg, "big xxx", 7) == 0);

	/* NULL drops the message but still hands the code back. */
	CHECK_EQ_INT(cg_err_set(NULL, CG_ERR_CRYPTO, "dropped %d", 1), CG_ERR_CRYPTO);
	CHECK_EQ_INT(cg_err_set(NULL, 0, "nothing"), 0);
}

static void
test_prefix(void)
{
	struct cg_err err = { 0 };
	char big[3 * CG_ERR_MSG_MAX];
	size_t i, n;

	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_INCOMPLETE, "offset 40: frame cut short"), CG_ERR_INCOMPLETE);
	CHECK_EQ_INT(cg_err_prefix(&err, "batch %s", "b1.cgb"), CG_ERR_INCOMPLETE);
	CHECK_EQ_INT(err.code, CG_ERR_INCOMPLETE);
	CHECK_STR(err.msg, "batch b1.cgb: offset 40: frame cut short");
	/* Layers stack outward. */
	CHECK_EQ_INT(cg_err_prefix(&err, "ingest"), CG_ERR_INCOMPLETE);
	CHECK_STR(err.msg, "ingest: batch b1.cgb: offset 40: frame cut short");

	/* Prefixing an empty message. */
	cg_err_clear(&err);
	CHECK_EQ_INT(cg_err_prefix(&err, "p"), 0);
	CHECK_STR(err.msg, "p: ");

	/* An old message near the limit: the result is cut, never overrun. */
	for (n = CG_ERR_MSG_MAX - 3; n <= CG_ERR_MSG_MAX - 1; n++) {
		memset(big, 'm', n);
		big[n] = '\0';
		CHECK_EQ_INT(cg_err_set(&err, CG_ERR_FORMAT, "%s", big), CG_ERR_FORMAT);
		CHECK_EQ_INT(strlen(err.msg), n);
		CHECK_EQ_INT(cg_err_prefix(&err, "file.csv"), CG_ERR_FORMAT);
		CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		CHECK_EQ_INT(strlen(err.msg), CG_ERR_MSG_MAX - 1);
		CHECK(strncmp(err.msg, "file.csv: mmm", 13) == 0);
		for (i = 10; i < strlen(err.msg); i++)
			if (err.msg[i] != 'm')
				break;
		CHECK_EQ_INT(i, CG_ERR_MSG_MAX - 1);
	}

	/* A prefix longer than the whole buffer: NUL-terminated, starts with the prefix. */
	for (i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_IO, "old message"), CG_ERR_IO);
	CHECK_EQ_INT(cg_err_prefix(&err, "%s", big), CG_ERR_IO);
	CHECK_EQ_INT(err.code, CG_ERR_IO);
	CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
	n = strlen(err.msg);
	CHECK(n < CG_ERR_MSG_MAX);
	CHECK(n >= CG_ERR_MSG_MAX - 3);
	CHECK(strncmp(err.msg, big, CG_ERR_MSG_MAX - 3) == 0);

	/* A prefix exactly filling the room left for ": ". */
	memset(big, 'p', CG_ERR_MSG_MAX - 3);
	big[CG_ERR_MSG_MAX - 3] = '\0';
	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_DB, "old"), CG_ERR_DB);
	CHECK_EQ_INT(cg_err_prefix(&err, "%s", big), CG_ERR_DB);
	CHECK_EQ_INT(strlen(err.msg), CG_ERR_MSG_MAX - 1);
	CHECK(strncmp(err.msg, big, CG_ERR_MSG_MAX - 3) == 0);
	CHECK(strcmp(err.msg + CG_ERR_MSG_MAX - 3, ": ") == 0);

	/* NULL has no code to return: the contract-breaking caller gets INTERNAL. */
	CHECK_EQ_INT(cg_err_prefix(NULL, "x"), CG_ERR_INTERNAL);
}

static void
test_clear(void)
{
	struct cg_err err;

	memset(&err, 'z', sizeof(err));
	CHECK_EQ_INT(cg_err_set(&err, CG_ERR_PERM, "key.sk: mode 0644"), CG_ERR_PERM);
	cg_err_clear(&err);
	CHECK_EQ_INT(err.code, 0);
	CHECK_STR(err.msg, "");
	cg_err_clear(NULL);
	CHECK(1);
}

int
main(void)
{
	test_strerror();
	test_set();
	test_prefix();
	test_clear();
	CGT_DONE();
}

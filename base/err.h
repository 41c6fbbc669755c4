/*
 * err.h - crossgate's one error type.
 *
 * Fallible functions return 0 or a negative CG_ERR_* code and, on failure,
 * fill a caller-provided struct cg_err with a human message that names what
 * failed and where (file, line or offset, field).  Messages never contain a
 * secret, an identifier, a token or a feature value: callers pass only
 * positions, column names and reasons.
 *
 * This module lives in crypto/ because crypto/ is the lowest layer and every
 * other folder already depends on it.
 */
#ifndef CG_ERR_H
#define CG_ERR_H

#include <stddef.h>

#define CG_OK                 0
#define CG_ERR_INTERNAL      -1  /* a bug or an impossible state */
#define CG_ERR_NOMEM         -2
#define CG_ERR_IO            -3  /* open/read/write/rename failed */
#define CG_ERR_FORMAT        -4  /* malformed input: CSV, frame, batch, key file, checkpoint */
#define CG_ERR_CRYPTO        -5  /* a signature, MAC or AEAD tag did not verify */
#define CG_ERR_POLICY        -6  /* the policy forbids it, or the policy itself is invalid */
#define CG_ERR_DUPLICATE     -7  /* already committed (harmless replay) */
#define CG_ERR_PERM          -8  /* unsafe file permissions on a secret */
#define CG_ERR_ARG           -9  /* bad command-line argument or API misuse by a caller */
#define CG_ERR_LIMIT        -10  /* a size or count limit was exceeded */
#define CG_ERR_DB           -11  /* SQLite error */
#define CG_ERR_VERIFY       -12  /* audit log verification failed */
#define CG_ERR_INCOMPLETE   -13  /* more input is needed (truncated) */
#define CG_ERR_NOTFOUND     -14
#define CG_ERR_MIN          -14

#define CG_ERR_MSG_MAX 512

struct cg_err {
	int code;
	char msg[CG_ERR_MSG_MAX];
};

#if defined(__GNUC__)
#define CG_MUST_CHECK __attribute__((warn_unused_result))
#define CG_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define CG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CG_MUST_CHECK
#define CG_NONNULL(...)
#define CG_PRINTF(f, a)
#endif

/* Short fixed description of a code ("malformed input", ...). Never NULL. */
const char *cg_strerror(int code);

/*
 * Record an error and return `code`, so that callers can write
 *   return cg_err_set(err, CG_ERR_FORMAT, "%s:%zu: bad quote", path, line);
 * `err` may be NULL (the message is then dropped).  An existing message is
 * overwritten: the innermost failure sets it, outer layers may prefix it.
 */
int cg_err_set(struct cg_err *err, int code, const char *fmt, ...) CG_PRINTF(3, 4);

/* Prefix the current message with "prefix: " (e.g. a file name). Returns err->code. */
int cg_err_prefix(struct cg_err *err, const char *fmt, ...) CG_PRINTF(2, 3);

/* Reset to "no error". */
void cg_err_clear(struct cg_err *err);

#endif

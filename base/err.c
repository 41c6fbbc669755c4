/* err.c - see err.h */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const cg_err_names[] = {
	"success",
	"internal error",
	"out of memory",
	"input/output error",
	"malformed input",
	"verification failed",
	"refused by policy",
	"duplicate",
	"unsafe permissions",
	"invalid argument",
	"limit exceeded",
	"database error",
	"audit log verification failed",
	"truncated input",
	"not found",
};

const char *
cg_strerror(int code)
{
	if (code > 0 || code < CG_ERR_MIN)
		return "unknown error";
	return cg_err_names[-code];
}

int
cg_err_set(struct cg_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int
cg_err_prefix(struct cg_err *err, const char *fmt, ...)
{
	char prefix[CG_ERR_MSG_MAX], old[CG_ERR_MSG_MAX];
	size_t n;
	va_list ap;

	if (err == NULL)
		return CG_ERR_INTERNAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Built by hand: a long prefix cuts the message, never overruns it. */
	n = strlen(prefix);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	old[sizeof(old) - 1 - n] = '\0';
	memcpy(err->msg + n, old, strlen(old) + 1);
	return err->code;
}

void
cg_err_clear(struct cg_err *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

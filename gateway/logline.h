/*
 * logline.h - one JSON log line of the gateway's processes (the server's
 * worker threads, the monitor, the sandboxed worker): {"time", "level",
 * "event", then the caller's key/value pairs}, compact and ASCII-escaped.
 * Callers never pass a key, token, identifier or value (server.h).
 */
#ifndef CG_LOGLINE_H
#define CG_LOGLINE_H

#include <stdarg.h>

/*
 * The line (without its newline) for `event` and the pairs in ap: const
 * char *key, json_t *value, ..., NULL.  Takes every value (a NULL value is
 * skipped); returns a malloc'd string, or NULL when out of memory.
 */
char *logline_vmake(const char *level, const char *event, va_list ap);

#endif

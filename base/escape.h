/*
 * escape.h - untrusted text made safe for where it is shown: the one
 * escaping helper for stderr, the JSON log, `audit show` and HTML.
 *
 * Text from outside (a batch header's partner_id, a CSV field name, a
 * certificate's identity, an error message that quotes them) can carry
 * terminal escape sequences, newlines that forge a second log line, bidi
 * overrides that reorder what a reader sees, or bytes that are not UTF-8.
 * escape_text() keeps printable ASCII and ordinary UTF-8 as they are and
 * writes everything else visibly:
 *   backslash         \\
 *   \n \r \t          \n \r \t
 *   other C0, DEL     \xNN
 *   C1 controls (U+0080-U+009F, e.g. the 8-bit CSI), bidi and invisible
 *   format characters (U+061C, U+200B-U+200F, U+2028-U+202E, U+2060-U+2069,
 *   U+FEFF)          \u{XXXX}
 *   invalid UTF-8     \xNN per byte
 * so the output is one line of valid UTF-8 that shows what was sent and
 * cannot act on a terminal.  escape_html() also writes & < > " ' as
 * entities.
 */
#ifndef CG_ESCAPE_H
#define CG_ESCAPE_H

#include <stddef.h>
#include <stdio.h>
#include "base/err.h"

/*
 * Escape s into out (cap bytes, always NUL-terminated when cap > 0, cut at
 * a whole escape).  Returns the length the whole escape needs (excluding the
 * NUL), as snprintf does: >= cap means it was cut.
 */
size_t escape_text(char *out, size_t cap, const char *s) CG_NONNULL(3);
/* The same into fresh memory (caller frees); NULL only when out of memory. */
char *escape_text_dup(const char *s) CG_NONNULL(1);
/* Write s to f escaped for HTML text or attribute values. */
void escape_html(FILE *f, const char *s) CG_NONNULL(1, 2);

#endif

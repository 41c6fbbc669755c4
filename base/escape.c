/* escape.c - see escape.h */
#include "base/escape.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/* Code points that reorder, hide or break a line without looking like anything. */
static int
escape_invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

/* `digits` hex digits of v into p; snprintf cost most of a fuzzing run's time on bytes escaped one by one. */
static size_t
escape_hex(char *p, uint32_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = digits - 1; i >= 0; i--, v >>= 4)
		p[i] = hex[v & 15];
	return (size_t)digits;
}

/*
 * The escape of the character at s (len bytes left) into piece (up to 8
 * bytes: "\u{XXXX}", as every invisible code point is below U+10000); how
 * many input bytes it covers in *used.
 */
static size_t
escape_one(const unsigned char *s, size_t len, char piece[16], size_t *used)
{
	uint32_t cp;
	size_t n;

	*used = 1;
	if (s[0] >= 0x20 && s[0] < 0x7f) {
		if (s[0] == '\\') {
			memcpy(piece, "\\\\", 2);
			return 2;
		}
		piece[0] = (char)s[0];
		return 1;
	}
	switch (s[0]) {
	case '\n': memcpy(piece, "\\n", 2); return 2;
	case '\r': memcpy(piece, "\\r", 2); return 2;
	case '\t': memcpy(piece, "\\t", 2); return 2;
	default: break;
	}
	if (s[0] < 0x80 || (n = utf8_decode(s, len, &cp)) == 0) {
		memcpy(piece, "\\x", 2);
		return 2 + escape_hex(piece + 2, s[0], 2);
	}
	*used = n;
	if (escape_invisible(cp)) {
		memcpy(piece, "\\u{", 3);
		escape_hex(piece + 3, cp, 4);
		piece[7] = '}';
		return 8;
	}
	memcpy(piece, s, n);
	return n;
}

size_t
escape_text(char *out, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), need = 0, o = 0, used, k;
	char piece[16];
	int cut = 0;

	while (len > 0) {
		k = escape_one(p, len, piece, &used);
		/* a cut never splits an escape or a character */
		if (!cut && o + k < cap) {
			memcpy(out + o, piece, k);
			o += k;
		} else
			cut = 1;
		need += k;
		p += used;
		len -= used;
	}
	if (cap > 0)
		out[o] = '\0';
	return need;
}

char *
escape_text_dup(const char *s)
{
	size_t n = escape_text(NULL, 0, s);
	char *out = malloc(n + 1);

	if (out != NULL)
		escape_text(out, n + 1, s);
	return out;
}

void
escape_html(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), used, k;
	char piece[16];

	while (len > 0) {
		switch (*p) {
		case '&': fputs("&amp;", f); used = 1; break;
		case '<': fputs("&lt;", f); used = 1; break;
		case '>': fputs("&gt;", f); used = 1; break;
		case '"': fputs("&quot;", f); used = 1; break;
		case '\'': fputs("&#39;", f); used = 1; break;
		default:
			k = escape_one(p, len, piece, &used);
			fwrite(piece, 1, k, f);
		}
		p += used;
		len -= used;
	}
}

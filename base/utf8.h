/*
 * utf8.h - strict UTF-8 decoding (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequences.  Used wherever
 * text from outside is read (identifiers, policies, signed notes).
 */
#ifndef CG_UTF8_H
#define CG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid sequence at s with its code point in *cp, or 0 if invalid. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* 1 if all of s is valid UTF-8. */
int utf8_valid(const unsigned char *s, size_t len);

#endif

/*
 * normalize.h - identifier normalization: the same person written two ways
 * must give the same bytes, so that the token PRF gives the same token.
 *
 * Input is UTF-8 text as read from a CSV cell.  Output is written into a
 * caller buffer as a NUL-terminated ASCII string; the caller wipes it after
 * use (it is an identifier).  Error messages name the reason only, never the
 * identifier itself.
 */
#ifndef CG_NORMALIZE_H
#define CG_NORMALIZE_H

#include <stddef.h>
#include "base/err.h"

#define NORMALIZE_EMAIL_MAX 254      /* RFC 5321 path limit */
#define NORMALIZE_PHONE_MAX 16       /* '+' and at most 15 digits (E.164) */

struct normalize_email_rules {
	int gmail_dots;     /* gmail.com/googlemail.com: drop dots in the local part */
	int plus_tags;      /* gmail.com/googlemail.com: drop "+tag" from the local part */
	int plus_tags_all;  /* drop "+tag" for every provider */
	int googlemail;     /* googlemail.com is gmail.com */
};

/*
 * Email: trim ASCII and Unicode white space (U+00A0, U+1680, U+2000..U+200B,
 * U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF) at both ends, lowercase
 * ASCII, then apply the provider rules.  Rejected (CG_ERR_FORMAT, message says
 * why): empty, no '@' or more than one, empty local part or domain, local part
 * longer than 64, whole address longer than 254, a domain without a dot or with
 * an empty label, characters outside RFC 5322 atext / LDH, non-ASCII, inner
 * white space, quoted local parts.  `out` must hold NORMALIZE_EMAIL_MAX + 1
 * (a smaller `out` that cannot hold the result: CG_ERR_ARG).
 */
int normalize_email(const char *in, size_t in_len,
    const struct normalize_email_rules *rules,
    char *out, size_t out_size, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3, 4);

/*
 * Phone to E.164 ("+8613812345678").  Accepts "+CC...", "00CC...", and
 * national numbers, which get the default country's calling code (a national
 * trunk prefix "0" is dropped for countries that use one).  Spaces, dots,
 * dashes, slashes and parentheses are separators; Unicode white space is
 * trimmed.  Rejected: letters, a '+' not at the start, fewer than 7 or more
 * than 15 digits after normalization, an unknown default country.
 * `default_country` is an ISO 3166-1 alpha-2 code ("CN", "US", ...).
 * `out` must hold NORMALIZE_PHONE_MAX + 1.  Bad input is CG_ERR_FORMAT; an
 * unknown default country (checked on every call, even for "+CC" input) or a
 * too small `out` is CG_ERR_ARG, a configuration error rather than a bad row.
 * Unicode white space inside the number is a separator too, and full-width
 * digits, '+', parentheses and Unicode dashes count as their ASCII forms.
 */
int normalize_phone(const char *in, size_t in_len, const char *default_country,
    char *out, size_t out_size, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3, 4);

/* Calling code of an ISO 3166-1 alpha-2 country, or NULL if unknown. */
const char *normalize_country_code(const char *alpha2);

#endif

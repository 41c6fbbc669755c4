/* normalize.c - see normalize.h */
#include "base/normalize.h"
#include "base/utf8.h"

#include <stdint.h>
#include <string.h>
#include <sodium.h>

#define EMAIL_LOCAL_MAX 64      /* RFC 5321 §4.5.3.1.1 */
#define EMAIL_LABEL_MAX 63      /* RFC 1035 §2.3.4 */
#define PHONE_DIGITS_MIN 7
#define PHONE_DIGITS_MAX 15     /* E.164 §6 */
/*
 * Room for the longest international prefix ("0011") plus a trunk "0" plus
 * 15 digits, with slack; anything longer is too long whatever it is.
 */
#define PHONE_SCAN_MAX 24

/* ---- UTF-8 ------------------------------------------------------------ */

/* The white space of normalize.h: what CSV exports and web forms leave around values. */
static int
is_space_cp(uint32_t cp)
{
	switch (cp) {
	case ' ': case '\t': case '\n': case '\r': case '\v': case '\f':
	case 0x00a0: case 0x1680: case 0x2028: case 0x2029: case 0x202f:
	case 0x205f: case 0x3000: case 0xfeff:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200b;
	}
}

/*
 * Narrow [*start, *end) past white space at both ends.  The text must be valid
 * UTF-8 already, so stepping back over continuation bytes finds a lead byte.
 */
static void
trim_space(const unsigned char *s, size_t *start, size_t *end)
{
	uint32_t cp;
	size_t n, p;

	while (*start < *end) {
		n = utf8_decode(s + *start, *end - *start, &cp);
		if (n == 0 || !is_space_cp(cp))
			break;
		*start += n;
	}
	while (*end > *start) {
		p = *end - 1;
		while (p > *start && (s[p] & 0xc0) == 0x80)
			p--;
		n = utf8_decode(s + p, *end - p, &cp);
		if (n == 0 || p + n != *end || !is_space_cp(cp))
			break;
		*end = p;
	}
}

/* ---- email ------------------------------------------------------------ */

/* RFC 5322 §3.2.3 atext */
static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 1035 §2.3.1 letters, digits, hyphen */
static int
is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

static const char *
email_check_local(const char *l, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty local part";
	if (len > EMAIL_LOCAL_MAX)
		return "local part longer than 64 characters";
	/* RFC 5322 §3.4.1 dot-atom: dots only between atext runs */
	if (l[0] == '.' || l[len - 1] == '.')
		return "local part starts or ends with a dot";
	for (i = 0; i < len; i++) {
		if (l[i] == '.') {
			if (l[i + 1] == '.')
				return "local part has consecutive dots";
		} else if (!is_atext((unsigned char)l[i]))
			return "invalid character in local part";
	}
	return NULL;
}

static const char *
email_check_domain(const char *d, size_t len)
{
	size_t i, label = 0;

	if (len == 0)
		return "empty domain";
	if (memchr(d, '.', len) == NULL)
		return "domain has no dot";
	for (i = 0; i < len; i++) {
		if (d[i] != '.' && !is_ldh((unsigned char)d[i]))
			return "invalid character in domain";
	}
	for (i = 0; i <= len; i++) {
		if (i < len && d[i] != '.') {
			if (++label > EMAIL_LABEL_MAX)
				return "domain label longer than 63 characters";
			continue;
		}
		if (label == 0)
			return "domain has an empty label";
		if (d[i - label] == '-' || d[i - 1] == '-')
			return "domain label starts or ends with a hyphen";
		label = 0;
	}
	return NULL;
}

int
normalize_email(const char *in, size_t in_len,
    const struct normalize_email_rules *rules,
    char *out, size_t out_size, struct cg_err *err)
{
	const unsigned char *s = (const unsigned char *)in;
	char buf[NORMALIZE_EMAIL_MAX + 1];
	const char *why;
	char *at, *domain, *plus;
	size_t start = 0, end = in_len, len, i, j, n, local_len;
	uint32_t cp;
	int rc = CG_ERR_FORMAT, gmail;

	if (out_size > 0)
		out[0] = '\0';
	if (!utf8_valid(s, in_len)) {
		cg_err_set(err, rc, "email: invalid UTF-8");
		goto out;
	}
	trim_space(s, &start, &end);
	len = end - start;
	if (len == 0) {
		cg_err_set(err, rc, "email: empty");
		goto out;
	}
	/* Reasons that explain the whole value come before its length. */
	for (i = start; i < end; i += n) {
		n = 1;
		if (s[i] >= 0x80) {
			n = utf8_decode(s + i, end - i, &cp);
			if (n == 0) {   /* cannot happen: validated above */
				cg_err_set(err, rc, "email: invalid UTF-8");
				goto out;
			}
			if (is_space_cp(cp))
				cg_err_set(err, rc, "email: white space inside the address");
			else
				cg_err_set(err, rc, "email: non-ASCII characters are not supported");
			goto out;
		}
		if (is_space_cp(s[i])) {
			cg_err_set(err, rc, "email: white space inside the address");
			goto out;
		}
		if (s[i] == '"') {
			cg_err_set(err, rc, "email: quoted local parts are not supported");
			goto out;
		}
	}
	if (len > NORMALIZE_EMAIL_MAX) {
		cg_err_set(err, rc, "email: longer than %d characters", NORMALIZE_EMAIL_MAX);
		goto out;
	}
	for (i = 0; i < len; i++) {
		buf[i] = (char)s[start + i];
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char)(buf[i] - 'A' + 'a');
	}
	buf[len] = '\0';

	/* A NUL from the input would hide the rest of the address from strchr. */
	if (memchr(buf, '\0', len) != NULL) {
		cg_err_set(err, rc, "email: invalid character");
		goto out;
	}
	if ((at = strchr(buf, '@')) == NULL) {
		cg_err_set(err, rc, "email: missing '@'");
		goto out;
	}
	if (strchr(at + 1, '@') != NULL) {
		cg_err_set(err, rc, "email: more than one '@'");
		goto out;
	}
	local_len = (size_t)(at - buf);
	domain = at + 1;
	if ((why = email_check_local(buf, local_len)) != NULL ||
	    (why = email_check_domain(domain, strlen(domain))) != NULL) {
		cg_err_set(err, rc, "email: %s", why);
		goto out;
	}

	if (rules->googlemail && strcmp(domain, "googlemail.com") == 0)
		memcpy(domain, "gmail.com", sizeof("gmail.com"));   /* shorter: fits */
	gmail = strcmp(domain, "gmail.com") == 0 || strcmp(domain, "googlemail.com") == 0;

	*at = '\0';
	if ((rules->plus_tags_all || (gmail && rules->plus_tags)) &&
	    (plus = strchr(buf, '+')) != NULL) {
		*plus = '\0';
		if (plus == buf) {
			cg_err_set(err, rc, "email: local part is empty once the tag is removed");
			goto out;
		}
	}
	if (gmail && rules->gmail_dots) {
		for (i = j = 0; buf[i] != '\0'; i++) {
			if (buf[i] != '.')
				buf[j++] = buf[i];
		}
		buf[j] = '\0';
		if (j == 0) {
			cg_err_set(err, rc, "email: local part is empty once the dots are removed");
			goto out;
		}
	}
	local_len = strlen(buf);
	/* "a.+tag" would leave "a.", which is not an address (RFC 5322 dot-atom). */
	if (buf[local_len - 1] == '.') {
		cg_err_set(err, rc, "email: local part ends with a dot once the tag is removed");
		goto out;
	}
	len = local_len + 1 + strlen(domain);
	if (len + 1 > out_size) {
		rc = cg_err_set(err, CG_ERR_ARG, "email: output buffer too small");
		goto out;
	}
	memcpy(out, buf, local_len);
	out[local_len] = '@';
	memcpy(out + local_len + 1, domain, strlen(domain) + 1);
	rc = 0;
 out:
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

/* ---- phone ------------------------------------------------------------ */

struct phone_country {
	char alpha2[3];
	const char *calling_code;
	/*
	 * National trunk prefix dropped from national numbers: "0" for most;
	 * "1" for NANP, where it is the country code itself; "8" for Russia;
	 * "" where the leading digit is part of the number (Italy keeps its 0).
	 */
	const char *trunk;
	/* International call prefix other than "00", tried before it. */
	const char *idd;
};

static const struct phone_country phone_countries[] = {
	{ "AT", "43",  "0", NULL },
	{ "AU", "61",  "0", "0011" },
	{ "BE", "32",  "0", NULL },
	{ "BR", "55",  "0", NULL },
	{ "CA", "1",   "1", "011" },
	{ "CH", "41",  "0", NULL },
	{ "CN", "86",  "0", NULL },
	{ "DE", "49",  "0", NULL },
	{ "DK", "45",  "",  NULL },
	{ "ES", "34",  "",  NULL },
	{ "FI", "358", "0", NULL },
	{ "FR", "33",  "0", NULL },
	{ "GB", "44",  "0", NULL },
	{ "HK", "852", "",  NULL },
	{ "IE", "353", "0", NULL },
	{ "IN", "91",  "0", NULL },
	{ "IT", "39",  "",  NULL },
	{ "JP", "81",  "0", "010" },
	{ "KR", "82",  "0", NULL },
	{ "NL", "31",  "0", NULL },
	{ "NO", "47",  "",  NULL },
	{ "NZ", "64",  "0", NULL },
	{ "PL", "48",  "",  NULL },
	{ "PT", "351", "",  NULL },
	{ "RU", "7",   "8", "810" },
	{ "SE", "46",  "0", NULL },
	{ "SG", "65",  "",  NULL },
	{ "TW", "886", "0", "002" },
	{ "US", "1",   "1", "011" },
};

static const struct phone_country *
phone_country_by_alpha2(const char *alpha2)
{
	char up[3];
	size_t i;

	if (alpha2 == NULL || strlen(alpha2) != 2)
		return NULL;
	for (i = 0; i < 2; i++) {
		up[i] = alpha2[i];
		if (up[i] >= 'a' && up[i] <= 'z')
			up[i] = (char)(up[i] - 'a' + 'A');
	}
	up[2] = '\0';
	for (i = 0; i < sizeof(phone_countries) / sizeof(phone_countries[0]); i++) {
		if (strcmp(phone_countries[i].alpha2, up) == 0)
			return &phone_countries[i];
	}
	return NULL;
}

static const struct phone_country *
phone_country_by_code(const char *code, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(phone_countries) / sizeof(phone_countries[0]); i++) {
		if (strlen(phone_countries[i].calling_code) == len &&
		    memcmp(phone_countries[i].calling_code, code, len) == 0)
			return &phone_countries[i];
	}
	return NULL;
}

const char *
normalize_country_code(const char *alpha2)
{
	const struct phone_country *c = phone_country_by_alpha2(alpha2);

	return c != NULL ? c->calling_code : NULL;
}

/*
 * Length of the calling code at the start of `d`, or 0 if none can start so.
 * Calling codes are prefix-free (ITU-T E.164 Annex to Operational Bulletin):
 * zones 1 and 7 are one digit, the two-digit codes are listed, all else is
 * three digits.  This is exact for every assigned code without a full table.
 */
static size_t
phone_cc_len(const char *d, size_t len)
{
	static const char two[] =
	    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 "
	    "51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 "
	    "90 91 92 93 94 95 98 ";
	size_t i;

	if (len == 0 || d[0] == '0')
		return 0;
	if (d[0] == '1' || d[0] == '7')
		return 1;
	if (len < 2)
		return 0;
	for (i = 0; two[i] != '\0'; i += 3) {
		if (two[i] == d[0] && two[i + 1] == d[1])
			return 2;
	}
	return 3;
}

enum phone_char {
	PHONE_DIGIT,
	PHONE_PLUS,
	PHONE_SEP,
	PHONE_OPEN,     /* '(' : a separator, but "(0)" is a trunk prefix */
	PHONE_CLOSE,
	PHONE_LETTER,
	PHONE_BAD,
};

/*
 * Classify one code point.  Full-width digits and signs and Unicode dashes
 * are accepted because East Asian input methods and word processors produce
 * them for numbers that users typed as ASCII.
 */
static enum phone_char
phone_classify(uint32_t cp, char *digit)
{
	if (cp >= 0xff10 && cp <= 0xff19)
		cp = cp - 0xff10 + '0';
	else if (cp == 0xff0b)
		cp = '+';
	else if (cp == 0xff08)
		cp = '(';
	else if (cp == 0xff09)
		cp = ')';
	else if (cp == 0xff0d || cp == 0xff0e || cp == 0xff0f ||
	    (cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212)
		cp = '-';
	if (cp >= '0' && cp <= '9') {
		*digit = (char)cp;
		return PHONE_DIGIT;
	}
	if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
		return PHONE_LETTER;
	switch (cp) {
	case '+': return PHONE_PLUS;
	case '(': return PHONE_OPEN;
	case ')': return PHONE_CLOSE;
	case '-': case '.': case '/': return PHONE_SEP;
	default:
		return is_space_cp(cp) ? PHONE_SEP : PHONE_BAD;
	}
}

int
normalize_phone(const char *in, size_t in_len, const char *default_country,
    char *out, size_t out_size, struct cg_err *err)
{
	const unsigned char *s = (const unsigned char *)in;
	const struct phone_country *home, *dest;
	char d[PHONE_SCAN_MAX + 1], e164[NORMALIZE_PHONE_MAX + 1];
	char digit = 0;
	size_t start = 0, end = in_len, i, n, nd = 0, p, cc, len;
	size_t paren_zero = SIZE_MAX;   /* digit index of a "(0)" group */
	size_t open_at = SIZE_MAX;      /* digit index at the last '(' */
	uint32_t cp;
	int rc = CG_ERR_FORMAT, plus = 0, intl = 0, overflow = 0, paren_digits = 0;
	int trunk_dropped = 0;

	if (out_size > 0)
		out[0] = '\0';
	memset(d, 0, sizeof(d));
	memset(e164, 0, sizeof(e164));
	/* A configuration mistake, not bad data: fail on every row alike. */
	if ((home = phone_country_by_alpha2(default_country)) == NULL) {
		rc = cg_err_set(err, CG_ERR_ARG, "phone: unknown default country");
		goto out;
	}
	if (!utf8_valid(s, in_len)) {
		cg_err_set(err, rc, "phone: invalid UTF-8");
		goto out;
	}
	trim_space(s, &start, &end);
	if (start == end) {
		cg_err_set(err, rc, "phone: empty");
		goto out;
	}
	for (i = start; i < end; i += n) {
		n = utf8_decode(s + i, end - i, &cp);
		if (n == 0) {   /* cannot happen: validated above */
			cg_err_set(err, rc, "phone: invalid UTF-8");
			goto out;
		}
		switch (phone_classify(cp, &digit)) {
		case PHONE_DIGIT:
			if (nd == PHONE_SCAN_MAX)
				overflow = 1;
			else
				d[nd++] = digit;
			paren_digits++;
			break;
		case PHONE_PLUS:
			if (i != start) {
				cg_err_set(err, rc, "phone: '+' not at the start");
				goto out;
			}
			plus = 1;
			break;
		case PHONE_OPEN:
			open_at = nd;
			paren_digits = 0;
			break;
		case PHONE_CLOSE:
			if (open_at != SIZE_MAX && paren_digits == 1 && nd > 0 &&
			    d[nd - 1] == '0')
				paren_zero = nd - 1;
			open_at = SIZE_MAX;
			break;
		case PHONE_SEP:
			break;
		case PHONE_LETTER:
			cg_err_set(err, rc, "phone: letters are not supported "
			    "(extensions, vanity numbers and URIs are rejected)");
			goto out;
		default:
			cg_err_set(err, rc, "phone: invalid character");
			goto out;
		}
	}
	if (overflow) {
		cg_err_set(err, rc, "phone: too many digits (at most %d with the country code)",
		    PHONE_DIGITS_MAX);
		goto out;
	}

	/* p: where the calling code starts in d; national numbers get one. */
	p = 0;
	if (plus)
		intl = 1;
	else if (home->idd != NULL && nd > strlen(home->idd) &&
	    memcmp(d, home->idd, strlen(home->idd)) == 0) {
		intl = 1;
		p = strlen(home->idd);
	} else if (nd > 2 && d[0] == '0' && d[1] == '0') {
		intl = 1;
		p = 2;
	}

	len = 0;
	if (intl) {
		if (p == nd) {
			cg_err_set(err, rc, "phone: too few digits (at least %d with the country code)",
			    PHONE_DIGITS_MIN);
			goto out;
		}
		if ((cc = phone_cc_len(d + p, nd - p)) == 0) {
			cg_err_set(err, rc, "phone: invalid country code");
			goto out;
		}
		if (cc > nd - p) {
			cg_err_set(err, rc, "phone: too few digits (at least %d with the country code)",
			    PHONE_DIGITS_MIN);
			goto out;
		}
		dest = phone_country_by_code(d + p, cc);
		memcpy(e164 + 1, d + p, cc);
		len = cc;
		p += cc;
		/*
		 * "+44 (0)20..." writes the trunk prefix that is dialled only at
		 * home; a bare "+44 020..." is the same mistake.  Italy and San
		 * Marino are the exception: their leading 0 is part of the number.
		 */
		if (p < nd && d[p] == '0') {
			if ((paren_zero == p &&
			    !(cc == 2 && memcmp(e164 + 1, "39", 2) == 0) &&
			    !(cc == 3 && memcmp(e164 + 1, "378", 3) == 0)) ||
			    (dest != NULL && strcmp(dest->trunk, "0") == 0))
				trunk_dropped = 1;
			p += (size_t)trunk_dropped;
			/* No number starts with 0 once the trunk 0 is gone. */
			if (trunk_dropped && p < nd && d[p] == '0') {
				cg_err_set(err, rc, "phone: 0 after the trunk prefix");
				goto out;
			}
		}
	} else {
		cc = strlen(home->calling_code);
		memcpy(e164 + 1, home->calling_code, cc);
		len = cc;
		if (strcmp(home->trunk, "1") == 0) {
			/* NANP: "1 212 555 0100" already carries the country code. */
			if (nd == 11 && d[0] == '1')
				p = 1;
		} else if (strcmp(home->trunk, "8") == 0) {
			if (nd == 11 && d[0] == '8')
				p = 1;
		} else if (home->trunk[0] != '\0' && nd > 0 && d[0] == home->trunk[0])
			p = 1;
	}
	if (len + (nd - p) < PHONE_DIGITS_MIN) {
		cg_err_set(err, rc, "phone: too few digits (at least %d with the country code)",
		    PHONE_DIGITS_MIN);
		goto out;
	}
	if (len + (nd - p) > PHONE_DIGITS_MAX) {
		cg_err_set(err, rc, "phone: too many digits (at most %d with the country code)",
		    PHONE_DIGITS_MAX);
		goto out;
	}
	memcpy(e164 + 1 + len, d + p, nd - p);
	len += nd - p;
	e164[0] = '+';
	e164[len + 1] = '\0';
	if (len + 2 > out_size) {
		rc = cg_err_set(err, CG_ERR_ARG, "phone: output buffer too small");
		goto out;
	}
	memcpy(out, e164, len + 2);
	rc = 0;
 out:
	sodium_memzero(d, sizeof(d));
	sodium_memzero(e164, sizeof(e164));
	return rc;
}

/* test_normalize.c - identifier normalization: same person, same bytes */
#include "base/normalize.h"
#include "cgtest.h"

#define LEN_STR ((size_t)-1)    /* use strlen(in) */

static const struct normalize_email_rules r_none = { 0, 0, 0, 0 };
static const struct normalize_email_rules r_gmail = { 1, 1, 0, 1 };
static const struct normalize_email_rules r_all = { 1, 1, 1, 1 };
static const struct normalize_email_rules r_nomap = { 1, 1, 0, 0 };   /* googlemail.com kept */

struct email_case {
	const char *in;
	size_t len;
	const struct normalize_email_rules *rules;
	const char *want;       /* NULL: rejected */
	const char *why;        /* substring of the message when rejected */
};

static const struct email_case email_cases[] = {
	/* white space, ASCII and Unicode, at both ends */
	{ "  Alice@Example.COM ", LEN_STR, &r_none, "alice@example.com", NULL },
	{ "\xc2\xa0" "bob@example.com" "\xc2\xa0", LEN_STR, &r_none, "bob@example.com", NULL },
	{ "\xe3\x80\x80" "bob@example.com" "\xe3\x80\x80", LEN_STR, &r_none, "bob@example.com", NULL },
	{ "\xef\xbb\xbf" "bob@example.com", LEN_STR, &r_none, "bob@example.com", NULL },
	{ "\t\r\n" "bob@example.com" "\xe2\x80\x8b\xe2\x80\xaf", LEN_STR, &r_none, "bob@example.com", NULL },
	{ "BOB@EXAMPLE.COM", LEN_STR, &r_none, "bob@example.com", NULL },
	{ "o'Brien_x{y}@Sub.Example-1.org", LEN_STR, &r_none, "o'brien_x{y}@sub.example-1.org", NULL },
	/* provider rules */
	{ "John.Doe+news@gmail.com", LEN_STR, &r_gmail, "johndoe@gmail.com", NULL },
	{ "John.Doe@GoogleMail.com", LEN_STR, &r_gmail, "johndoe@gmail.com", NULL },
	{ "john.doe+x@googlemail.com", LEN_STR, &r_nomap, "johndoe@googlemail.com", NULL },
	{ "john.doe+x@example.com", LEN_STR, &r_gmail, "john.doe+x@example.com", NULL },
	{ "john.doe+x@example.com", LEN_STR, &r_all, "john.doe@example.com", NULL },
	{ "john.doe+x@gmail.com", LEN_STR, &r_none, "john.doe+x@gmail.com", NULL },
	{ "john.doe@googlemail.com", LEN_STR, &r_none, "john.doe@googlemail.com", NULL },
	{ "a+b+c@gmail.com", LEN_STR, &r_gmail, "a@gmail.com", NULL },
	{ "j.o.h.n@mail.gmail.com", LEN_STR, &r_gmail, "j.o.h.n@mail.gmail.com", NULL },
	{ "+tag@example.com", LEN_STR, &r_none, "+tag@example.com", NULL },
	{ "+tag@gmail.com", LEN_STR, &r_gmail, NULL, "local part is empty" },
	{ "+tag@example.com", LEN_STR, &r_all, NULL, "local part is empty" },
	{ "john.+x@example.com", LEN_STR, &r_all, NULL, "ends with a dot once the tag is removed" },
	{ "john.+x@example.com", LEN_STR, &r_none, "john.+x@example.com", NULL },
	{ "john.+x@gmail.com", LEN_STR, &r_gmail, "john@gmail.com", NULL },
	/* structure */
	{ "", LEN_STR, &r_none, NULL, "email: empty" },
	{ " \xc2\xa0\xe3\x80\x80 ", LEN_STR, &r_none, NULL, "email: empty" },
	{ "alice.example.com", LEN_STR, &r_none, NULL, "email: missing '@'" },
	{ "alice@corp@example.com", LEN_STR, &r_none, NULL, "more than one '@'" },
	{ "@example.com", LEN_STR, &r_none, NULL, "empty local part" },
	{ "alice@", LEN_STR, &r_none, NULL, "empty domain" },
	{ "alice@localhost", LEN_STR, &r_none, NULL, "email: domain has no dot" },
	{ "a@b..com", LEN_STR, &r_none, NULL, "domain has an empty label" },
	{ "alice@.example.com", LEN_STR, &r_none, NULL, "domain has an empty label" },
	{ "alice@example.com.", LEN_STR, &r_none, NULL, "domain has an empty label" },
	{ "alice@-example.com", LEN_STR, &r_none, NULL, "starts or ends with a hyphen" },
	{ "alice@example-.com", LEN_STR, &r_none, NULL, "starts or ends with a hyphen" },
	{ "alice@exa_mple.com", LEN_STR, &r_none, NULL, "invalid character in domain" },
	{ "alice@[192.0.2.1]", LEN_STR, &r_none, NULL, "invalid character in domain" },
	{ "ali(ce@example.com", LEN_STR, &r_none, NULL, "invalid character in local part" },
	{ "alice\0@example.com", 18, &r_none, NULL, "invalid character" },
	{ ".alice@example.com", LEN_STR, &r_none, NULL, "starts or ends with a dot" },
	{ "alice.@example.com", LEN_STR, &r_none, NULL, "starts or ends with a dot" },
	{ "al..ice@example.com", LEN_STR, &r_none, NULL, "consecutive dots" },
	{ "\"alice\"@example.com", LEN_STR, &r_none, NULL, "quoted local parts" },
	/* white space inside, non-ASCII, bad UTF-8 */
	{ "ali ce@example.com", LEN_STR, &r_none, NULL, "white space inside" },
	{ "alice@exa\xc2\xa0mple.com", LEN_STR, &r_none, NULL, "white space inside" },
	{ "jos\xc3\xa9@example.com", LEN_STR, &r_none, NULL, "non-ASCII characters are not supported" },
	{ "alice@\xe4\xbe\x8b\xe5\xad\x90.com", LEN_STR, &r_none, NULL, "non-ASCII characters are not supported" },
	{ "\xff" "alice@example.com", LEN_STR, &r_none, NULL, "email: invalid UTF-8" },
	{ "alice@example.com\xc3", LEN_STR, &r_none, NULL, "email: invalid UTF-8" },
	{ "\xc0\xa0" "alice@example.com", LEN_STR, &r_none, NULL, "email: invalid UTF-8" },     /* overlong space */
	{ "alice@example.com\xed\xa0\x80", LEN_STR, &r_none, NULL, "email: invalid UTF-8" },    /* surrogate */
};

/* Build "<local_len x 'l'>@<domain_len chars ending in .com>", labels of at most 63. */
static void
make_long_email(char *buf, size_t local_len, size_t domain_len)
{
	size_t i, n = 0;

	for (i = 0; i < local_len; i++)
		buf[n++] = 'l';
	buf[n++] = '@';
	for (i = 0; i + 4 < domain_len; i++)
		buf[n++] = i % 64 == 63 ? '.' : 'd';
	memcpy(buf + n, ".com", 5);
}

/* The message must not repeat the identifier or any recognisable part of it. */
static void
check_no_leak(const char *msg, const char *in, size_t len)
{
	const char *at;
	char part[512];
	size_t n;

	if (len == 0 || memchr(in, '\0', len) != NULL)
		return;
	CHECK(strstr(msg, in) == NULL);
	if ((at = memchr(in, '@', len)) == NULL)
		return;
	n = (size_t)(at - in);
	if (n >= 4 && n < sizeof(part)) {
		memcpy(part, in, n);
		part[n] = '\0';
		CHECK(strstr(msg, part) == NULL);
	}
	n = len - (size_t)(at + 1 - in);
	if (n >= 4 && n < sizeof(part)) {
		memcpy(part, at + 1, n);
		part[n] = '\0';
		CHECK(strstr(msg, part) == NULL);
	}
}

static void
test_email_table(void)
{
	char out[NORMALIZE_EMAIL_MAX + 1];
	struct cg_err err;
	size_t i, len;
	int rc;

	for (i = 0; i < sizeof(email_cases) / sizeof(email_cases[0]); i++) {
		const struct email_case *c = &email_cases[i];

		len = c->len == LEN_STR ? strlen(c->in) : c->len;
		cg_err_clear(&err);
		memset(out, 'X', sizeof(out));
		rc = normalize_email(c->in, len, c->rules, out, sizeof(out), &err);
		if (c->want != NULL) {
			if (rc != 0)
				fprintf(stderr, "email case %zu: %s\n", i, err.msg);
			CHECK_EQ_INT(rc, 0);
			CHECK_STR(out, c->want);
		} else {
			if (rc != CG_ERR_FORMAT)
				fprintf(stderr, "email case %zu accepted: %s\n", i, out);
			CHECK_EQ_INT(rc, CG_ERR_FORMAT);
			CHECK_EQ_INT(err.code, CG_ERR_FORMAT);
			CHECK_CONTAINS(err.msg, c->why);
			CHECK_CONTAINS(err.msg, "email: ");
			CHECK_EQ_INT(out[0], '\0');
			check_no_leak(err.msg, c->in, len);
		}
	}
}

static void
test_email_lengths(void)
{
	char in[600], out[NORMALIZE_EMAIL_MAX + 1];
	struct cg_err err;

	make_long_email(in, 64, 20);
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), 0);
	CHECK_STR(out, in);

	make_long_email(in, 65, 20);
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "local part longer than 64");
	CHECK(strstr(err.msg, "lllll") == NULL);

	make_long_email(in, 64, 189);   /* 64 + 1 + 189 = 254 */
	CHECK(strstr(in, "..") == NULL && strstr(in, "@.") == NULL);
	CHECK_EQ_INT(strlen(in), 254);
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), 0);
	CHECK_STR(out, in);

	make_long_email(in, 64, 190);
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "longer than 254");
	CHECK(strstr(err.msg, "ddddd") == NULL);

	/* white space around does not count against the limit */
	in[0] = ' ';
	make_long_email(in + 1, 64, 189);
	strcat(in, "\xe3\x80\x80");
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), 0);
	CHECK_EQ_INT(strlen(out), 254);

	/* a label of 64 */
	memcpy(in, "llll@", 5);
	memset(in + 5, 'd', 64);
	memcpy(in + 69, ".com", 5);
	CHECK_EQ_INT(normalize_email(in, strlen(in), &r_none, out, sizeof(out), &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "label longer than 63");

	/* a long input that is mostly white space is not read past its length */
	memset(in, ' ', sizeof(in));
	memcpy(in + 200, "a@b.co", 6);
	CHECK_EQ_INT(normalize_email(in, sizeof(in), &r_none, out, sizeof(out), &err), 0);
	CHECK_STR(out, "a@b.co");
	CHECK_EQ_INT(normalize_email(in, 203, &r_none, out, sizeof(out), &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "domain has no dot");
}

static void
test_email_same_person(void)
{
	static const char *const forms[] = {
		"johndoe@gmail.com",
		"  John.Doe+Promo@GoogleMail.com ",
		"\xef\xbb\xbfJ.O.H.N.D.O.E@GMAIL.COM\xc2\xa0",
		"\xe3\x80\x80john.doe+a+b@gmail.com",
	};
	char first[NORMALIZE_EMAIL_MAX + 1], out[NORMALIZE_EMAIL_MAX + 1];
	struct cg_err err;
	size_t i;

	CHECK_EQ_INT(normalize_email(forms[0], strlen(forms[0]), &r_gmail, first, sizeof(first), &err), 0);
	for (i = 1; i < sizeof(forms) / sizeof(forms[0]); i++) {
		CHECK_EQ_INT(normalize_email(forms[i], strlen(forms[i]), &r_gmail, out, sizeof(out), &err), 0);
		CHECK_STR(out, first);
	}
	/* without the rules they are different people */
	CHECK_EQ_INT(normalize_email(forms[1], strlen(forms[1]), &r_none, out, sizeof(out), &err), 0);
	CHECK_STR(out, "john.doe+promo@googlemail.com");
}

static void
test_email_api(void)
{
	char out[NORMALIZE_EMAIL_MAX + 1], small[8];
	struct cg_err err;

	memset(small, 'X', sizeof(small));
	CHECK_EQ_INT(normalize_email("alice@example.com", 17, &r_none, small, sizeof(small), &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "output buffer too small");
	CHECK_EQ_INT(small[0], '\0');
	/* exactly enough room */
	CHECK_EQ_INT(normalize_email("a@b.co", 6, &r_none, small, 7, &err), 0);
	CHECK_STR(small, "a@b.co");
	/* err is optional */
	CHECK_EQ_INT(normalize_email("nope", 4, &r_none, out, sizeof(out), NULL), CG_ERR_FORMAT);
	/* in_len bounds the input, not a NUL */
	CHECK_EQ_INT(normalize_email("a@b.cozzz", 6, &r_none, out, sizeof(out), &err), 0);
	CHECK_STR(out, "a@b.co");
}

struct phone_case {
	const char *country;
	const char *in;
	const char *want;       /* NULL: rejected */
	int code;               /* expected code when rejected */
	const char *why;
};

static const struct phone_case phone_cases[] = {
	/* one Chinese mobile, many spellings */
	{ "CN", "+86 138-1234-5678", "+8613812345678", 0, NULL },
	{ "CN", "138 1234 5678", "+8613812345678", 0, NULL },
	{ "CN", "13812345678", "+8613812345678", 0, NULL },
	{ "CN", "0086 138 1234 5678", "+8613812345678", 0, NULL },
	{ "cn", "+86 (138) 1234.5678", "+8613812345678", 0, NULL },
	{ "US", "+8613812345678", "+8613812345678", 0, NULL },
	{ "CN", "\xe3\x80\x80\xef\xbc\x8b\xef\xbc\x98\xef\xbc\x96 138\xe2\x80\x93" "1234\xc2\xa0" "5678\xef\xbb\xbf",
	    "+8613812345678", 0, NULL },
	/* Chinese landline: trunk 0 */
	{ "CN", "010-6552-9988", "+861065529988", 0, NULL },
	{ "GB", "+86 10 6552 9988", "+861065529988", 0, NULL },
	/* one London number */
	{ "GB", "+44 (0)20 7946 0958", "+442079460958", 0, NULL },
	{ "GB", "020 7946 0958", "+442079460958", 0, NULL },
	{ "GB", "(0)20 7946 0958", "+442079460958", 0, NULL },
	{ "US", "+44 20 7946 0958", "+442079460958", 0, NULL },
	{ "DE", "0044 20 7946 0958", "+442079460958", 0, NULL },
	{ "FR", "+44 020 7946 0958", "+442079460958", 0, NULL },
	{ "US", "011 44 20 7946 0958", "+442079460958", 0, NULL },
	{ "AU", "0011 44 20 7946 0958", "+442079460958", 0, NULL },
	/* NANP: a leading 1 is the country code */
	{ "US", "(212) 555-0123", "+12125550123", 0, NULL },
	{ "US", "1-212-555-0123", "+12125550123", 0, NULL },
	{ "CA", "212.555.0123", "+12125550123", 0, NULL },
	{ "CN", "+1 212 555 0123", "+12125550123", 0, NULL },
	/* Italy keeps its 0, even when written as "(0)" */
	{ "IT", "06 6988 3145", "+390669883145", 0, NULL },
	{ "GB", "+39 06 6988 3145", "+390669883145", 0, NULL },
	{ "GB", "+39 (0)6 6988 3145", "+390669883145", 0, NULL },
	/* other trunk and international prefixes */
	{ "JP", "090-1234-5678", "+819012345678", 0, NULL },
	{ "JP", "010 81 90 1234 5678", "+819012345678", 0, NULL },
	{ "RU", "8 (912) 345-67-89", "+79123456789", 0, NULL },
	{ "RU", "+7 912 345 67 89", "+79123456789", 0, NULL },
	{ "DE", "030/1234567", "+49301234567", 0, NULL },
	{ "AU", "04 1234 5678", "+61412345678", 0, NULL },
	{ "HK", "2123 4567", "+85221234567", 0, NULL },
	{ "SG", "6123 4567", "+6561234567", 0, NULL },
	{ "US", "+27 (0)21 123 4567", "+27211234567", 0, NULL },   /* "(0)" of a country not in the table */
	{ "GB", "+20 0123 456 789", "+200123456789", 0, NULL },   /* a 0 after a calling code ending in 0 */
	/* rejections */
	{ "CN", "tel:+8613812345678", NULL, CG_ERR_FORMAT, "letters" },
	{ "US", "+1 212 555 0123 x123", NULL, CG_ERR_FORMAT, "letters" },
	{ "US", "212-555-0123 ext. 4", NULL, CG_ERR_FORMAT, "letters" },
	{ "US", "1-800-FLOWERS", NULL, CG_ERR_FORMAT, "letters" },
	{ "CN", "123", NULL, CG_ERR_FORMAT, "too few digits" },
	{ "CN", "+86 1234", NULL, CG_ERR_FORMAT, "too few digits" },
	{ "CN", "+", NULL, CG_ERR_FORMAT, "too few digits" },
	{ "CN", "+86 1381234567890123", NULL, CG_ERR_FORMAT, "too many digits" },
	{ "CN", "1381234567890123456789012345678901234567", NULL, CG_ERR_FORMAT, "too many digits" },
	{ "CN", "86+13812345678", NULL, CG_ERR_FORMAT, "'+' not at the start" },
	{ "CN", "++8613812345678", NULL, CG_ERR_FORMAT, "'+' not at the start" },
	{ "GB", "+44 (0)02 7946 0958", NULL, CG_ERR_FORMAT, "0 after the trunk prefix" },
	{ "GB", "+44 00 20 7946 0958", NULL, CG_ERR_FORMAT, "0 after the trunk prefix" },
	{ "CN", "+0 123 4567 890", NULL, CG_ERR_FORMAT, "invalid country code" },
	{ "CN", "138#1234*5678", NULL, CG_ERR_FORMAT, "invalid character" },
	{ "CN", "138 1234 5678 \xd9\xa3", NULL, CG_ERR_FORMAT, "invalid character" },
	{ "CN", "", NULL, CG_ERR_FORMAT, "phone: empty" },
	{ "CN", " \xe3\x80\x80 ", NULL, CG_ERR_FORMAT, "phone: empty" },
	{ "CN", "\xff" "13812345678", NULL, CG_ERR_FORMAT, "phone: invalid UTF-8" },
	{ "XX", "13812345678", NULL, CG_ERR_ARG, "unknown default country" },
	{ "", "13812345678", NULL, CG_ERR_ARG, "unknown default country" },
	{ "CHN", "+8613812345678", NULL, CG_ERR_ARG, "unknown default country" },
};

static void
test_phone_table(void)
{
	char out[NORMALIZE_PHONE_MAX + 1];
	struct cg_err err;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(phone_cases) / sizeof(phone_cases[0]); i++) {
		const struct phone_case *c = &phone_cases[i];

		cg_err_clear(&err);
		memset(out, 'X', sizeof(out));
		rc = normalize_phone(c->in, strlen(c->in), c->country, out, sizeof(out), &err);
		if (c->want != NULL) {
			if (rc != 0)
				fprintf(stderr, "phone case %zu: %s\n", i, err.msg);
			CHECK_EQ_INT(rc, 0);
			CHECK_STR(out, c->want);
		} else {
			if (rc == 0)
				fprintf(stderr, "phone case %zu accepted: %s\n", i, out);
			CHECK_EQ_INT(rc, c->code);
			CHECK_EQ_INT(err.code, c->code);
			CHECK_CONTAINS(err.msg, c->why);
			CHECK_CONTAINS(err.msg, "phone: ");
			CHECK_EQ_INT(out[0], '\0');
			if (strlen(c->in) >= 4)
				CHECK(strstr(err.msg, c->in) == NULL);
			CHECK(strstr(err.msg, "1234") == NULL);
		}
	}
}

static void
test_phone_api(void)
{
	char out[NORMALIZE_PHONE_MAX + 1], small[8];
	struct cg_err err;

	/* the longest E.164 number fills the documented buffer exactly */
	CHECK_EQ_INT(normalize_phone("+123456789012345", 16, "US", out, sizeof(out), &err), 0);
	CHECK_STR(out, "+123456789012345");
	CHECK_EQ_INT(normalize_phone("+8613812345678", 14, "CN", small, sizeof(small), &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "output buffer too small");
	CHECK_EQ_INT(small[0], '\0');
	CHECK_EQ_INT(normalize_phone("abc", 3, "CN", out, sizeof(out), NULL), CG_ERR_FORMAT);
	/* in_len bounds the input */
	CHECK_EQ_INT(normalize_phone("13812345678999", 11, "CN", out, sizeof(out), &err), 0);
	CHECK_STR(out, "+8613812345678");
}

static void
test_country_codes(void)
{
	static const char *const want[][2] = {
		{ "CN", "86" }, { "US", "1" }, { "CA", "1" }, { "GB", "44" }, { "DE", "49" },
		{ "FR", "33" }, { "JP", "81" }, { "KR", "82" }, { "IN", "91" }, { "SG", "65" },
		{ "HK", "852" }, { "TW", "886" }, { "AU", "61" }, { "BR", "55" }, { "RU", "7" },
		{ "ES", "34" }, { "IT", "39" }, { "NL", "31" }, { "SE", "46" }, { "CH", "41" },
		{ "cn", "86" },
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK_STR(normalize_country_code(want[i][0]), want[i][1]);
	CHECK(normalize_country_code("XX") == NULL);
	CHECK(normalize_country_code("C") == NULL);
	CHECK(normalize_country_code("CHN") == NULL);
	CHECK(normalize_country_code("") == NULL);
	CHECK(normalize_country_code(NULL) == NULL);
}

int
main(void)
{
	test_email_table();
	test_email_lengths();
	test_email_same_person();
	test_email_api();
	test_phone_table();
	test_phone_api();
	test_country_codes();
	CGT_DONE();
}

/* test_utf8.c - strict UTF-8 decoding */
#include <stdint.h>

#include "cgtest.h"
#include "base/utf8.h"

int
main(void)
{
	static const struct {
		const char *s;
		size_t len;       /* expected sequence length, 0 = invalid */
		uint32_t cp;
	} cases[] = {
		{ "A", 1, 0x41 }, { "\xc2\xa0", 2, 0xa0 }, { "\xe3\x80\x80", 3, 0x3000 },
		{ "\xef\xbb\xbf", 3, 0xfeff }, { "\xf0\x9f\x98\x80", 4, 0x1f600 }, { "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
		{ "\x80", 0, 0 },                 /* lone continuation byte */
		{ "\xc0\x80", 0, 0 },             /* overlong NUL */
		{ "\xc1\xbf", 0, 0 },             /* overlong */
		{ "\xe0\x80\xaf", 0, 0 },         /* overlong '/' */
		{ "\xed\xa0\x80", 0, 0 },         /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 0, 0 },     /* above U+10FFFF */
		{ "\xf5\x80\x80\x80", 0, 0 },
		{ "\xe3\x80", 0, 0 },             /* truncated */
		{ "\xf2", 0, 0 },                 /* the sequence that hangs libfyaml 0.7.12 */
		{ "\xc3\x28", 0, 0 },             /* bad continuation */
	};
	size_t i;
	uint32_t cp;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = utf8_decode((const unsigned char *)cases[i].s, strlen(cases[i].s), &cp);
		CHECK_EQ_INT(n, cases[i].len);
		if (n != 0)
			CHECK_EQ_INT(cp, cases[i].cp);
		CHECK_EQ_INT(utf8_valid((const unsigned char *)cases[i].s, strlen(cases[i].s)), n != 0);
	}
	CHECK_EQ_INT(utf8_decode((const unsigned char *)"", 0, &cp), 0);
	CHECK(utf8_valid((const unsigned char *)"", 0));
	CHECK(utf8_valid((const unsigned char *)"caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87", 12));
	CHECK(!utf8_valid((const unsigned char *)"caf\xc3\xa9 \xe4\xb8", 8));
	CGT_DONE();
}

/* test_b64.c - strict base64 decoding */
#include <sodium.h>

#include "cgtest.h"
#include "base/b64.h"

int
main(void)
{
	static const struct {
		const char *in;
		int ok;
		size_t len;
	} cases[] = {
		{ "Zm9v", 1, 3 }, { "Zm8=", 1, 2 }, { "Zg==", 1, 1 }, { "AA+/", 1, 3 },
		{ "", 0, 0 }, { "Zm9", 0, 0 }, { "Zm9v\n", 0, 0 }, { "Zm 9", 0, 0 }, { "Zh==", 0, 0 },
		{ "AAA\xc7", 0, 0 }, { "A\x80" "AA", 0, 0 }, { "Zm9v====", 0, 0 }, { "Z===", 0, 0 },
		{ "Zm-_", 0, 0 },
	};
	unsigned char out[16];
	size_t i, n;

	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = b64_decode_strict(cases[i].in, strlen(cases[i].in), out, sizeof(out), &n);
		if (cases[i].ok) {
			CHECK_EQ_INT(r, 0);
			CHECK_EQ_INT(n, cases[i].len);
		} else {
			CHECK_EQ_INT(r, -1);
			CHECK_EQ_INT(n, 0);
		}
	}
	CHECK_EQ_INT(b64_decode_strict("Zm9vYmFy", 8, out, 3, &n), -1);   /* does not fit */
	CGT_DONE();
}

/* b64.c - see b64.h */
#include "base/b64.h"

#include <sodium.h>

int
b64_decode_strict(const char *in, size_t in_len, unsigned char *out, size_t out_max, size_t *out_len)
{
	size_t i, pad = 0;
	unsigned char c;

	*out_len = 0;
	if (in_len == 0 || in_len % 4 != 0)
		return -1;
	while (pad < 2 && in[in_len - 1 - pad] == '=')
		pad++;
	for (i = 0; i < in_len - pad; i++) {
		c = (unsigned char)in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return -1;
	}
	if (sodium_base642bin(out, out_max, in, in_len, NULL, out_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		*out_len = 0;
		return -1;
	}
	return 0;
}

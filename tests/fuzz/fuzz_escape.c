/*
 * fuzz_escape.c - libFuzzer harness for base/escape.c: whatever the input
 * (NUL-terminated at its first NUL), the escape is valid UTF-8 with no
 * control character and no bidi or invisible format character, a cut escape
 * is a prefix of the whole one, and HTML output has no markup character.
 * escape.options caps inputs at 512 bytes: the escape works character by
 * character, so longer inputs reach nothing new and cost eight times more.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/escape.h"
#include "base/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0)
			abort();                                   /* not UTF-8 */
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c ||
		    (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
		    (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff)
			abort();                                   /* a character that acts or hides */
		i += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *full, cut[37], *html = NULL;
	size_t need, hlen = 0, i;
	FILE *f;

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	need = escape_text(NULL, 0, in);
	if ((full = escape_text_dup(in)) == NULL)
		abort();
	if (strlen(full) != need)
		abort();
	check_clean(full, need);
	escape_text(cut, sizeof(cut), in);
	if (strncmp(full, cut, strlen(cut)) != 0 || strlen(cut) >= sizeof(cut))
		abort();
	check_clean(cut, strlen(cut));
	if ((f = open_memstream(&html, &hlen)) != NULL) {
		escape_html(f, in);
		fclose(f);
		check_clean(html, hlen);
		for (i = 0; i < hlen; i++)
			if (html[i] == '<' || html[i] == '>' || html[i] == '"' || html[i] == '\'')
				abort();
		free(html);
	}
	free(full);
	free(in);
	return 0;
}

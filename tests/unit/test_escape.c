/* test_escape.c - untrusted text shown safely: terminal, log, audit show, HTML */
#include "cgtest.h"
#include "base/escape.h"
#include "base/utf8.h"

static const char *
esc(const char *s)
{
	static char buf[512];

	escape_text(buf, sizeof(buf), s);
	return buf;
}

int
main(void)
{
	char small[8], *d;
	FILE *f;
	char *html = NULL;
	size_t hlen = 0;

	/* ordinary text, and ordinary UTF-8, unchanged */
	CHECK_STR(esc("partner k: 12 rows"), "partner k: 12 rows");
	CHECK_STR(esc("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"), "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
	CHECK_STR(esc(""), "");
	/* a terminal escape (clear screen, set title) and a forged second line */
	CHECK_STR(esc("k\x1b[2J\x1b]0;owned\x07"), "k\\x1b[2J\\x1b]0;owned\\x07");
	CHECK_STR(esc("k\nFAKE: audit ok\r\t"), "k\\nFAKE: audit ok\\r\\t");
	CHECK_STR(esc("a\\nb"), "a\\\\nb");                        /* a literal backslash cannot fake an escape */
	CHECK_STR(esc("\x7f"), "\\x7f");
	/* the 8-bit CSI (U+009B), a bidi override (U+202E) and a zero-width space (U+200B) */
	CHECK_STR(esc("\xc2\x9b" "31m"), "\\u{009b}31m");
	CHECK_STR(esc("evil\xe2\x80\xae" "txt.exe"), "evil\\u{202e}txt.exe");
	CHECK_STR(esc("a\xe2\x80\x8b" "b"), "a\\u{200b}b");
	/* bytes that are not UTF-8: each shown as \xNN, the rest kept */
	CHECK_STR(esc("\xff\xfe" "ok\xc3"), "\\xff\\xfeok\\xc3");
	CHECK_STR(esc("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");          /* an overlong '/' */
	CHECK(utf8_valid((const unsigned char *)esc("\xff\x1b\xc2\x9b\xe2\x80\xae"),
	    strlen(esc("\xff\x1b\xc2\x9b\xe2\x80\xae"))));

	/* the length needed, and a cut at a whole escape */
	CHECK_EQ_INT(escape_text(NULL, 0, "\x1b\x1b"), 8);
	CHECK_EQ_INT(escape_text(small, 5, "ab\x1b" "cd"), 8);
	CHECK_STR(small, "ab");                                     /* "\x1b" does not fit whole */
	CHECK_EQ_INT(escape_text(small, sizeof(small), "abcdefg"), 7);
	CHECK_STR(small, "abcdefg");
	d = escape_text_dup("x\n\x1b");
	CHECK_STR(d, "x\\n\\x1b");
	free(d);

	/* HTML: markup characters as entities, controls as in text */
	f = open_memstream(&html, &hlen);
	CHECK(f != NULL);
	if (f != NULL) {
		escape_html(f, "<script>alert('x')</script> & \"q\"\x1b\n");
		fclose(f);
		CHECK_STR(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\\x1b\\n");
		free(html);
	}
	CGT_DONE();
}

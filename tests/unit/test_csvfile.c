/* test_csvfile.c - CSV reading: rows, positions, and per-row rejections. */
#include "base/csvfile.h"
#include "cgtest.h"

#include <stdint.h>
#include <unistd.h>

#define RENDER_MAX (512 * 1024)

/*
 * One expected result per string: a row is "NUMBER@LINE:f1|f2|..." (fields
 * as they are, embedded newlines included); a rejection is "!CODE!" followed
 * by a substring its message must contain.
 */
static void
render_row(const struct csvfile_row *row, char *out, size_t outlen)
{
	size_t i, used;

	used = (size_t)snprintf(out, outlen, "%llu@%llu:", (unsigned long long)row->number,
	    (unsigned long long)row->line);
	for (i = 0; i < row->nfields && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%s", i > 0 ? "|" : "",
		    row->fields[i]);
}

static void
check_rows_invariants(const struct csvfile_row *row)
{
	size_t i;
	int ok = row->nfields <= CSVFILE_FIELDS_MAX;

	for (i = 0; i < row->nfields; i++)
		ok = ok && strlen(row->fields[i]) == row->lens[i] && row->lens[i] <= CSVFILE_FIELD_MAX;
	CHECK(ok);
}

/* Reads everything, going on past row errors, and compares with `expect`. */
static void
expect_reader(const char *label, struct csvfile *r, const char *const *expect)
{
	static char got[RENDER_MAX];
	struct csvfile_row *row;
	struct cg_err err;
	size_t k = 0;
	int rc;

	for (;;) {
		memset(&err, 0, sizeof(err));
		rc = csvfile_next(r, &row, &err);
		if (rc == 0)
			break;
		if (expect[k] == NULL) {
			cgt_fail++;
			fprintf(stderr, "%s: unexpected extra result %d (%s)\n", label, rc, err.msg);
			break;
		}
		if (rc == 1) {
			check_rows_invariants(row);
			render_row(row, got, sizeof(got));
			if (strcmp(got, expect[k]) == 0) {
				cgt_pass++;
			} else {
				cgt_fail++;
				fprintf(stderr, "%s: result %zu is row \"%s\", expected \"%s\"\n",
				    label, k, got, expect[k]);
			}
		} else {
			char want_code[16];

			CHECK(row == NULL);
			snprintf(want_code, sizeof(want_code), "!%d!", rc);
			if (strncmp(expect[k], want_code, strlen(want_code)) == 0 &&
			    strstr(err.msg, expect[k] + strlen(want_code)) != NULL) {
				cgt_pass++;
			} else {
				cgt_fail++;
				fprintf(stderr, "%s: result %zu is error %d \"%s\", expected \"%.80s\"\n",
				    label, k, rc, err.msg, expect[k]);
			}
			if (rc != CG_ERR_FORMAT && rc != CG_ERR_LIMIT)
				break;
		}
		k++;
	}
	if (expect[k] != NULL) {
		cgt_fail++;
		fprintf(stderr, "%s: input ended before result %zu \"%.80s\"\n", label, k, expect[k]);
	}
}

static void
expect_mem(const char *label, const char *buf, size_t len, const char *const *expect)
{
	struct csvfile *r = NULL;
	struct cg_err err;
	int rc;

	rc = csvfile_open_mem("t.csv", buf, len, &r, &err);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		return;
	CHECK_EQ_INT(csvfile_size(r), len);
	expect_reader(label, r, expect);
	CHECK_EQ_INT(csvfile_offset(r), len);
	csvfile_free(r);
}

#define E(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define S(lit) lit, sizeof(lit) - 1

struct mem_case {
	const char *label;
	const char *buf;
	size_t len;
	const char *const *expect;
};

static void
test_table(void)
{
	const struct mem_case cases[] = {
		{ "simple", S("a,b,c\n1,2,3\n"), E("1@1:a|b|c", "2@2:1|2|3") },
		{ "quoted comma and doubled quotes",
		  S("name,note\n\"Smith, J\",\"say \"\"hi\"\"\"\n"),
		  E("1@1:name|note", "2@2:Smith, J|say \"hi\"") },
		{ "embedded LF", S("h\n\"line1\nline2\",x\nnext,y\n"),
		  E("1@1:h", "2@2:line1\nline2|x", "3@4:next|y") },
		{ "CRLF endings and embedded CRLF", S("h1,h2\r\n\"a\r\nb\",c\r\nd,e\r\n"),
		  E("1@1:h1|h2", "2@2:a\r\nb|c", "3@4:d|e") },
		{ "two embedded newlines", S("\"x\n\ny\"\nz\n"), E("1@1:x\n\ny", "2@4:z") },
		{ "BOM", S("\xEF\xBB\xBFid,v\n1,2\n"), E("1@1:id|v", "2@2:1|2") },
		{ "BOM only", S("\xEF\xBB\xBF"), E(NULL) },
		{ "BOM not at start is data", S("a\n\xEF\xBB\xBF" "b\n"),
		  E("1@1:a", "2@2:\xEF\xBB\xBF" "b") },
		{ "missing final newline", S("a,b\nc,d"), E("1@1:a|b", "2@2:c|d") },
		{ "missing final newline after quote", S("a\n\"c,d\""), E("1@1:a", "2@2:c,d") },
		{ "empty lines skipped", S("\n\na\n\n\r\n  \nb\n\n"), E("1@3:a", "2@7:b") },
		{ "empty input", S(""), E(NULL) },
		{ "only newlines", S("\n\r\n\n"), E(NULL) },
		{ "blanks around unquoted fields dropped", S("a , b ,\" c \"\n"),
		  E("1@1:a|b| c ") },
		{ "empty fields", S("a,,\n,\n"), E("1@1:a||", "2@2:|") },
		{ "quoted empty field is a row", S("\"\"\nx\n"), E("1@1:", "2@2:x") },
		{ "lone CR ends rows", S("a\rb\r"), E("1@1:a", "2@1:b") },
		{ "UTF-8 passes through", S("\xC3\xA9t\xC3\xA9,\xE4\xB8\xAD\n"),
		  E("1@1:\xC3\xA9t\xC3\xA9|\xE4\xB8\xAD") },
		{ "quote inside an unquoted field, rows after it kept",
		  S("a,b\nc,d\"x\ne,f\n"),
		  E("1@1:a|b", "!-4!t.csv:2:4: malformed CSV (quote inside an unquoted field)",
		    "3@3:e|f") },
		{ "garbage after a closing quote", S("\"a\"x,b\nc\n"),
		  E("!-4!t.csv:1:4: malformed CSV (unexpected character after a closing quote)",
		    "2@2:c") },
		{ "error inside a multi-line row names the line of the fault",
		  S("h\n\"a\nb\"c\nd\n"),
		  E("1@1:h", "!-4!t.csv:3:3: malformed CSV (unexpected character after a closing quote)",
		    "3@4:d") },
		{ "error on the last line without newline", S("a\nb\"c"),
		  E("1@1:a", "!-4!t.csv:2:2: malformed CSV (quote inside an unquoted field)") },
		{ "unterminated quote at EOF", S("a\n\"open,b\nc\n"),
		  E("1@1:a", "!-4!t.csv:2: malformed CSV (unterminated quoted field)") },
		{ "NUL byte in a field", S("a,b\0c\nd\n"),
		  E("!-4!t.csv:1: NUL byte in field 2", "2@2:d") },
		{ "NUL byte in a quoted field", S("x\n\"\0\"\ny\n"),
		  E("1@1:x", "!-4!t.csv:2: NUL byte in field 1", "3@3:y") },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_mem(cases[i].label, cases[i].buf, cases[i].len, cases[i].expect);
}

/* Builds "h\n" + a row of `nfields` fields "f" + "\nlast\n". */
static char *
wide_row(size_t nfields, size_t *len)
{
	char *buf = malloc(2 + nfields * 2 + 6 + 1);
	size_t i, n = 0;

	if (buf == NULL)
		abort();
	memcpy(buf, "h\n", 2);
	n = 2;
	for (i = 0; i < nfields; i++) {
		buf[n++] = i > 0 ? ',' : 'f';
		if (i > 0)
			buf[n++] = 'f';
	}
	memcpy(buf + n, "\nlast\n", 6);
	n += 6;
	*len = n;
	return buf;
}

static void
test_field_count_limit(void)
{
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	size_t len;
	char *buf;

	buf = wide_row(CSVFILE_FIELDS_MAX, &len);
	CHECK_EQ_INT(csvfile_open_mem("t.csv", buf, len, &r, &err), 0);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(row->nfields, CSVFILE_FIELDS_MAX);
	CHECK_STR(row->fields[CSVFILE_FIELDS_MAX - 1], "f");
	csvfile_free(r);
	free(buf);

	buf = wide_row(CSVFILE_FIELDS_MAX + 1, &len);
	expect_mem("too many fields", buf, len,
	    E("1@1:h", "!-10!t.csv:2: more than 256 fields", "3@3:last"));
	free(buf);
}

/* "h\n" + `pre` + `n` bytes of 'x' + `post` + "\nlast\n" */
static char *
long_field(const char *pre, size_t n, const char *post, size_t *len)
{
	size_t lp = strlen(pre), lq = strlen(post);
	char *buf = malloc(2 + lp + n + lq + 6);

	if (buf == NULL)
		abort();
	memcpy(buf, "h\n", 2);
	memcpy(buf + 2, pre, lp);
	memset(buf + 2 + lp, 'x', n);
	memcpy(buf + 2 + lp + n, post, lq);
	memcpy(buf + 2 + lp + n + lq, "\nlast\n", 6);
	*len = 2 + lp + n + lq + 6;
	return buf;
}

static void
test_field_length_limit(void)
{
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;
	size_t len;
	char *buf;

	/* Exactly at the limit, quoted: accepted. */
	buf = long_field("a,\"", CSVFILE_FIELD_MAX, "\"", &len);
	CHECK_EQ_INT(csvfile_open_mem("t.csv", buf, len, &r, &err), 0);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(row->nfields, 2);
	CHECK_EQ_INT(row->lens[1], CSVFILE_FIELD_MAX);
	CHECK_EQ_INT(strlen(row->fields[1]), CSVFILE_FIELD_MAX);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_STR(row->fields[0], "last");
	csvfile_free(r);
	free(buf);

	/* One byte over: the row is rejected, the next one is read. */
	buf = long_field("a,", CSVFILE_FIELD_MAX + 1, ",b", &len);
	expect_mem("field one byte too long", buf, len,
	    E("1@1:h", "!-10!t.csv:2: field 2 longer than 65536 bytes", "3@3:last"));
	free(buf);

	/* Far over: libcsv's own buffer is capped too. */
	buf = long_field("a,", 5 * CSVFILE_FIELD_MAX, ",b", &len);
	expect_mem("unquoted field far too long", buf, len,
	    E("1@1:h", "!-10!t.csv:2: field 2 longer than 65536 bytes", "3@3:last"));
	free(buf);

	buf = long_field("a,\"", 5 * CSVFILE_FIELD_MAX, "\",b", &len);
	expect_mem("quoted field far too long", buf, len,
	    E("1@1:h", "!-10!t.csv:2: field 2 longer than 65536 bytes", "3@3:last"));
	free(buf);
}

static void
test_open_errors(void)
{
	struct csvfile *r = (struct csvfile *)&r;
	struct cg_err err;

	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(csvfile_open("/nonexistent-dir/users.csv", &r, &err), CG_ERR_IO);
	CHECK(r == NULL);
	CHECK_CONTAINS(err.msg, "/nonexistent-dir/users.csv");
	CHECK_CONTAINS(err.msg, "cannot open");

	r = (struct csvfile *)&r;
	CHECK_EQ_INT(csvfile_open("/tmp", &r, &err), CG_ERR_IO);
	CHECK(r == NULL);
	CHECK_CONTAINS(err.msg, "/tmp: is a directory");

	r = (struct csvfile *)&r;
	CHECK_EQ_INT(csvfile_open_mem("t.csv", NULL, 3, &r, &err), CG_ERR_ARG);
	CHECK(r == NULL);
	CHECK_CONTAINS(err.msg, "t.csv");

	CHECK_EQ_INT(csvfile_open_mem("t.csv", NULL, 0, &r, &err), 0);
	expect_reader("NULL empty buffer", r, E(NULL));
	csvfile_free(r);
	csvfile_free(NULL);
}

static void
test_progress(void)
{
	static const char data[] = "id,v\n1,2\n3,4";
	struct csvfile *r = NULL;
	struct csvfile_row *row;
	struct cg_err err;

	CHECK_EQ_INT(csvfile_open_mem("t.csv", data, sizeof(data) - 1, &r, &err), 0);
	CHECK_EQ_INT(csvfile_size(r), sizeof(data) - 1);
	CHECK_EQ_INT(csvfile_offset(r), 0);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(csvfile_offset(r), 5);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(csvfile_offset(r), 9);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 1);
	CHECK_EQ_INT(csvfile_offset(r), sizeof(data) - 1);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 0);
	CHECK(row == NULL);
	CHECK_EQ_INT(csvfile_next(r, &row, &err), 0);
	csvfile_free(r);
}

/*
 * A file several read chunks long, with a BOM, CRLF, quoted multi-line
 * fields and a few bad rows, so that rows straddle chunk boundaries: read
 * from disk, it must give exactly what reading it from memory gives.
 */
static char *
big_input(size_t *len)
{
	size_t cap = 4 * 1024 * 1024, n = 0, i;
	char *buf = malloc(cap);

	if (buf == NULL)
		abort();
	n += (size_t)snprintf(buf + n, cap - n, "\xEF\xBB\xBFid,note,v\r\n");
	for (i = 0; i < 20000; i++) {
		if (i % 97 == 5)
			n += (size_t)snprintf(buf + n, cap - n, "%zu,\"two\nlines, \"\"q\"\"\",%zu\n", i, i);
		else if (i % 1009 == 7)
			n += (size_t)snprintf(buf + n, cap - n, "%zu,bad\"quote,%zu\n", i, i);
		else if (i % 501 == 3)
			n += (size_t)snprintf(buf + n, cap - n, "\r\n");
		else
			n += (size_t)snprintf(buf + n, cap - n, "%zu,plain text %zu,%zu\r\n", i, i * 7, i);
	}
	*len = n;
	return buf;
}

static void
test_file_matches_memory(void)
{
	char path[] = "/tmp/test_csvfile_XXXXXX";
	struct csvfile *rf = NULL, *rm = NULL;
	struct csvfile_row *row_f, *row_m;
	struct cg_err err_f, err_m;
	size_t len, i, nrows = 0, nerrs = 0, mismatches = 0;
	uint64_t last_offset = 0, mid_offset = 0;
	int fd, rc_f, rc_m, monotonic = 1;
	char *buf = big_input(&len);
	FILE *fp;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0) {
		free(buf);
		return;
	}
	fp = fdopen(fd, "wb");
	CHECK(fp != NULL && fwrite(buf, 1, len, fp) == len);
	CHECK(fp != NULL && fclose(fp) == 0);

	CHECK_EQ_INT(csvfile_open(path, &rf, &err_f), 0);
	CHECK_EQ_INT(csvfile_open_mem("m.csv", buf, len, &rm, &err_m), 0);
	if (rf == NULL || rm == NULL)
		goto out;
	CHECK_EQ_INT(csvfile_size(rf), len);
	for (;;) {
		rc_f = csvfile_next(rf, &row_f, &err_f);
		rc_m = csvfile_next(rm, &row_m, &err_m);
		if (rc_f != rc_m) {
			mismatches++;
			break;
		}
		if (rc_f == 0)
			break;
		if (csvfile_offset(rf) < last_offset)
			monotonic = 0;
		last_offset = csvfile_offset(rf);
		if (nrows + nerrs == 10000)
			mid_offset = last_offset;
		if (rc_f < 0) {
			nerrs++;
			if (rc_f != CG_ERR_FORMAT || strcmp(strchr(err_f.msg, ':'),
			    strchr(err_m.msg, ':')) != 0)
				mismatches++;
			continue;
		}
		nrows++;
		if (row_f->nfields != row_m->nfields || row_f->line != row_m->line ||
		    row_f->number != row_m->number) {
			mismatches++;
			continue;
		}
		for (i = 0; i < row_f->nfields; i++)
			if (row_f->lens[i] != row_m->lens[i] ||
			    memcmp(row_f->fields[i], row_m->fields[i], row_f->lens[i]) != 0)
				mismatches++;
		if (row_f->number == 1)
			CHECK_STR(row_f->fields[0], "id");
		if (row_f->number == 6) {
			/* line 5 is blank, and row "5" holds a quoted newline */
			CHECK_STR(row_f->fields[0], "5");
			CHECK_STR(row_f->fields[1], "two\nlines, \"q\"");
			CHECK_EQ_INT(row_f->line, 7);
		}
		if (row_f->number == 7) {
			CHECK_STR(row_f->fields[0], "6");
			CHECK_EQ_INT(row_f->line, 9);
		}
		if (row_f->number == 9) {
			/* row 8 ("7") was malformed: it still counts as a row */
			CHECK_STR(row_f->fields[0], "8");
			CHECK_EQ_INT(row_f->line, 11);
		}
	}
	CHECK_EQ_INT(mismatches, 0);
	CHECK(monotonic);
	CHECK_EQ_INT(csvfile_offset(rf), len);
	CHECK(mid_offset > 0 && mid_offset < len);
	/* 20000 data lines less the blank ones, plus the header; bad rows are errors. */
	CHECK_EQ_INT(nerrs, 20);
	CHECK_EQ_INT(nrows + nerrs, 1 + 20000 - 40);
out:
	csvfile_free(rf);
	csvfile_free(rm);
	unlink(path);
	free(buf);
}

static void
test_file_errors_name_the_file(void)
{
	char path[] = "/tmp/test_csvfile_XXXXXX";
	static const char data[] = "a,b\nc,\"d\ne\n";
	struct csvfile *r = NULL;
	struct cg_err err;
	char want[128];
	int fd;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, sizeof(data) - 1) == (ssize_t)(sizeof(data) - 1));
	close(fd);
	CHECK_EQ_INT(csvfile_open(path, &r, &err), 0);
	if (r != NULL) {
		snprintf(want, sizeof(want), "!-4!%s:2: malformed CSV (unterminated quoted field)",
		    path);
		expect_reader("file unterminated", r, E("1@1:a|b", want));
		csvfile_free(r);
	}
	unlink(path);
}

/* "-" reads standard input, and messages call it <stdin>. */
static void
test_stdin(void)
{
	char path[] = "/tmp/test_csvfile_XXXXXX";
	static const char data[] = "a\nb\"\nc\n";
	struct csvfile *r = NULL;
	struct cg_err err;
	int fd;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, sizeof(data) - 1) == (ssize_t)(sizeof(data) - 1));
	close(fd);
	CHECK(freopen(path, "rb", stdin) != NULL);
	CHECK_EQ_INT(csvfile_open("-", &r, &err), 0);
	if (r != NULL) {
		expect_reader("stdin", r, E("1@1:a",
		    "!-4!<stdin>:2:2: malformed CSV (quote inside an unquoted field)", "3@3:c"));
		CHECK_EQ_INT(csvfile_offset(r), sizeof(data) - 1);
		csvfile_free(r);
	}
	unlink(path);
}

int
main(void)
{
	test_table();
	test_field_count_limit();
	test_field_length_limit();
	test_open_errors();
	test_progress();
	test_file_matches_memory();
	test_file_errors_name_the_file();
	test_stdin();
	CGT_DONE();
}

/* test_outfile.c - the one safe way to write a file */
#include "cgtest.h"
#include "base/outfile.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

static char dir[64];

static const char *
at(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static char *
slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Entries in the directory besides . and .. */
static int
entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	if (d != NULL)
		closedir(d);
	return n;
}

int
main(void)
{
	struct outfile o;
	struct cg_err err;
	struct stat sb;

	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/cg-test-outfile-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	umask(022);

	/* whole or nothing: the temporary file is hidden, random, and the only file until commit */
	CHECK_EQ_INT(outfile_open(&o, at("a.csv"), 0600, &err), 0);
	CHECK(o.tmp != NULL && strncmp(o.tmp, at(".a.csv."), strlen(at(".a.csv."))) == 0);
	CHECK(o.tmp != NULL && strlen(o.tmp) == strlen(at(".a.csv.")) + 16 + 4);
	fputs("one\n", o.f);
	CHECK(access(at("a.csv"), F_OK) != 0);
	CHECK_EQ_INT(entries(), 1);
	CHECK_EQ_INT(outfile_commit(&o, &err), 0);
	CHECK_STR(slurp(at("a.csv")), "one\n");
	CHECK_EQ_INT(entries(), 1);
	CHECK(stat(at("a.csv"), &sb) == 0 && (sb.st_mode & 07777) == 0600);

	/* a symlink at the output: replaced, its target untouched */
	CHECK_EQ_INT(outfile_write(at("victim"), "precious\n", 9, 0600, &err), 0);
	CHECK_EQ_INT(symlink(at("victim"), at("b.csv")), 0);
	CHECK_EQ_INT(outfile_write(at("b.csv"), "new\n", 4, 0600, &err), 0);
	CHECK_STR(slurp(at("victim")), "precious\n");
	CHECK(lstat(at("b.csv"), &sb) == 0 && S_ISREG(sb.st_mode));
	CHECK_STR(slurp(at("b.csv")), "new\n");

	/* a symlink at the old fixed temporary name is neither followed nor in the way */
	CHECK_EQ_INT(symlink(at("victim"), at("c.csv.tmp")), 0);
	CHECK_EQ_INT(outfile_write(at("c.csv"), "c\n", 2, 0600, &err), 0);
	CHECK_STR(slurp(at("victim")), "precious\n");
	CHECK_STR(slurp(at("c.csv")), "c\n");

	/* the mode asked for, narrowed by the umask */
	CHECK_EQ_INT(outfile_write(at("pub"), "p\n", 2, 0644, &err), 0);
	CHECK(stat(at("pub"), &sb) == 0 && (sb.st_mode & 07777) == 0644);
	umask(077);
	CHECK_EQ_INT(outfile_write(at("pub2"), "p\n", 2, 0644, &err), 0);
	CHECK(stat(at("pub2"), &sb) == 0 && (sb.st_mode & 07777) == 0600);

	/* abort: nothing left, an existing output kept */
	CHECK_EQ_INT(outfile_open(&o, at("a.csv"), 0600, &err), 0);
	fputs("half", o.f);
	outfile_abort(&o);
	CHECK_STR(slurp(at("a.csv")), "one\n");
	outfile_abort(&o);                       /* twice: a no-op */
	CHECK_EQ_INT(entries(), 7);              /* a.csv victim b.csv c.csv.tmp c.csv pub pub2 */

	/* failures name the file */
	CHECK_EQ_INT(outfile_open(&o, at("no/such/x.csv"), 0600, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "cannot create a temporary file for ");
	CHECK_CONTAINS(err.msg, "no/such/x.csv: No such file or directory");
	CHECK_EQ_INT(outfile_open(&o, at("dir/"), 0600, &err), CG_ERR_ARG);
	CHECK_CONTAINS(err.msg, "not a file name");
	CHECK_EQ_INT(mkdir(at("d"), 0700), 0);
	CHECK_EQ_INT(outfile_write(at("d"), "x", 1, 0600, &err), CG_ERR_IO);   /* rename over a directory */
	CHECK_CONTAINS(err.msg, "cannot rename");
	CHECK_EQ_INT(entries(), 8);              /* the temporary file of the failed commit is gone */

	/* a write that failed before the final flush (the stream's error flag: here
	 * a read from the write-only stream) fails the commit and keeps the old file */
	CHECK_EQ_INT(outfile_open(&o, at("a.csv"), 0600, &err), 0);
	fputs("lost", o.f);
	CHECK(fgetc(o.f) == EOF && ferror(o.f));
	CHECK_EQ_INT(outfile_commit(&o, &err), CG_ERR_IO);
	CHECK_CONTAINS(err.msg, "write failed");
	CHECK_STR(slurp(at("a.csv")), "one\n");
	CHECK_EQ_INT(entries(), 8);

	/* a relative name: the directory is "." */
	CHECK_EQ_INT(chdir(dir), 0);
	CHECK_EQ_INT(outfile_write("rel.txt", "r\n", 2, 0600, &err), 0);
	CHECK_STR(slurp("rel.txt"), "r\n");

	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK_EQ_INT(system(cmd), 0);
	}
	CGT_DONE();
}

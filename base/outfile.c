/* outfile.c - see outfile.h */
#include "base/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

static void
outfile_release(struct outfile *o)
{
	if (o->buf != NULL)
		sodium_memzero(o->buf, OUTFILE_BUF);
	free(o->buf);
	o->buf = NULL;
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
	o->f = NULL;
}

int
outfile_open(struct outfile *o, const char *path, mode_t mode, struct cg_err *err)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0, n = strlen(path);
	unsigned char rnd[8];
	char hex[17];
	int fd = -1, tries, e = 0;

	memset(o, 0, sizeof(*o));
	if (n == 0 || path[n - 1] == '/')
		return cg_err_set(err, CG_ERR_ARG, "cannot write '%s': not a file name", path);
	if ((o->path = strdup(path)) == NULL || (o->tmp = malloc(n + 2 + 16 + 5)) == NULL ||
	    (o->buf = malloc(OUTFILE_BUF)) == NULL) {
		outfile_release(o);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	/* A name nobody can predict, created exclusively: a planted file or symlink is an error, not a target. */
	for (tries = 0; tries < 8; tries++) {
		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
		snprintf(o->tmp, n + 2 + 16 + 5, "%.*s.%s.%s.tmp", (int)dlen, path, path + dlen, hex);
		fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || (e = errno) != EEXIST)
			break;
	}
	if (fd < 0) {
		int r = cg_err_set(err, CG_ERR_IO, "cannot create a temporary file for %s: %s", path, strerror(e));
		outfile_release(o);
		return r;
	}
	if ((o->f = fdopen(fd, "w")) == NULL) {
		int r = cg_err_set(err, CG_ERR_IO, "cannot open %s: %s", o->tmp, strerror(errno));
		close(fd);
		unlink(o->tmp);
		outfile_release(o);
		return r;
	}
	setvbuf(o->f, o->buf, _IOFBF, OUTFILE_BUF);
	return 0;
}

int
outfile_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, r;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
outfile_commit(struct outfile *o, struct cg_err *err)
{
	int r = 0;

	if (o->f == NULL)
		return cg_err_set(err, CG_ERR_ARG, "outfile: not open");
	/* ferror first: a write that failed earlier (a full disk mid-file) is
	 * remembered by the stream even when the final flush succeeds */
	if (ferror(o->f))
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed", o->tmp);
	else if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
	if (fclose(o->f) != 0 && r == 0)
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
	o->f = NULL;
	if (r == 0 && rename(o->tmp, o->path) != 0)
		r = cg_err_set(err, CG_ERR_IO, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
	if (r != 0)
		unlink(o->tmp);
	else if (outfile_sync_dir(o->path) != 0)
		r = cg_err_set(err, CG_ERR_IO, "%s: cannot sync its directory: %s", o->path, strerror(errno));
	outfile_release(o);
	return r;
}

void
outfile_abort(struct outfile *o)
{
	if (o->f != NULL) {
		fclose(o->f);
		unlink(o->tmp);
	}
	outfile_release(o);
}

int
outfile_write(const char *path, const void *data, size_t len, mode_t mode, struct cg_err *err)
{
	struct outfile o;
	int r;

	if ((r = outfile_open(&o, path, mode, err)) != 0)
		return r;
	if (len > 0 && fwrite(data, 1, len, o.f) != len) {
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", o.tmp, strerror(errno));
		outfile_abort(&o);
		return r;
	}
	return outfile_commit(&o, err);
}

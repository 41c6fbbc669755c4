/* outfile.c - see outfile.h */
#include "base/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
outfile_release(struct outfile *o)
{
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
	o->f = NULL;
}

int
outfile_open(struct outfile *o, const char *path, mode_t mode, struct cg_err *err)
{
	size_t n = strlen(path);
	int fd;

	memset(o, 0, sizeof(*o));
	if ((o->path = strdup(path)) == NULL || (o->tmp = malloc(n + 5)) == NULL) {
		outfile_release(o);
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	}
	memcpy(o->tmp, path, n);
	memcpy(o->tmp + n, ".tmp", 5);
	if ((fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0 ||
	    (o->f = fdopen(fd, "w")) == NULL) {
		int r = cg_err_set(err, CG_ERR_IO, "cannot create %s: %s", o->tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(o->tmp);
		}
		outfile_release(o);
		return r;
	}
	return 0;
}

int
outfile_commit(struct outfile *o, struct cg_err *err)
{
	int r = 0;

	if (o->f == NULL)
		return cg_err_set(err, CG_ERR_ARG, "outfile: not open");
	if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
	if (fclose(o->f) != 0 && r == 0)
		r = cg_err_set(err, CG_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
	o->f = NULL;
	if (r == 0 && rename(o->tmp, o->path) != 0)
		r = cg_err_set(err, CG_ERR_IO, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
	if (r != 0)
		unlink(o->tmp);
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

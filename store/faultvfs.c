/* faultvfs.c - see faultvfs.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "store/faultvfs.h"

#define FAULTVFS_NAME "crossgate-fault"

struct fault_file {
	sqlite3_file base;              /* must be first: SQLite sees a sqlite3_file */
	sqlite3_file *real;             /* the default VFS's file, allocated right after */
};

static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_io;
static sqlite3_vfs *fault_real;
static unsigned long fault_at[2];   /* [0] write, [1] sync: 1-based, 0 = never */
static int fault_sticky[2];
static atomic_ulong fault_seen[2];
static pthread_mutex_t fault_lock_init = PTHREAD_MUTEX_INITIALIZER;

static int
fault_hit(int sync)
{
	unsigned long n = atomic_fetch_add(&fault_seen[sync], 1) + 1;

	if (fault_at[sync] == 0)
		return 0;
	return n == fault_at[sync] || (fault_sticky[sync] && n > fault_at[sync]);
}

static int
fault_close(sqlite3_file *f)
{
	struct fault_file *ff = (struct fault_file *)f;
	int r = ff->real->pMethods ? ff->real->pMethods->xClose(ff->real) : SQLITE_OK;

	return r;
}

#define REAL(f) (((struct fault_file *)(f))->real)

static int
fault_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int
fault_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_hit(0))
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int
fault_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
fault_sync(sqlite3_file *f, int flags)
{
	if (fault_hit(1))
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
fault_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
fault_lock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int
fault_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int
fault_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
fault_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
fault_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
fault_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

/* WAL needs the shared-memory methods (io_methods version 2 and up). */
static int
fault_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int
fault_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
fault_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
fault_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
fault_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int
fault_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static int
fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct fault_file *ff = (struct fault_file *)f;
	int r;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	memset(ff->real, 0, (size_t)fault_real->szOsFile);
	f->pMethods = NULL;
	if ((r = fault_real->xOpen(fault_real, name, ff->real, flags, out_flags)) != SQLITE_OK)
		return r;
	/* The real file's method version decides which of ours SQLite may call. */
	fault_io.iVersion = ff->real->pMethods->iVersion < 3 ? ff->real->pMethods->iVersion : 3;
	f->pMethods = &fault_io;
	return SQLITE_OK;
}

static int
fault_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return fault_real->xDelete(fault_real, name, sync_dir);
}

static int
fault_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fault_real->xAccess(fault_real, name, flags, out);
}

static int
fault_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return fault_real->xFullPathname(fault_real, name, n, out);
}

static int
fault_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fault_real->xRandomness(fault_real, n, out);
}

static int
fault_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fault_real->xSleep(fault_real, us);
}

static int
fault_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fault_real->xCurrentTime(fault_real, out);
}

static int
fault_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fault_real->xGetLastError ? fault_real->xGetLastError(fault_real, n, out) : 0;
}

static int
fault_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fault_real->xCurrentTimeInt64(fault_real, out);
}

/* "write:N", "sync:N", with an optional trailing '+'. */
static int
fault_parse(const char *spec, struct cg_err *err)
{
	const char *p;
	char *end;
	int which;
	unsigned long n;

	if (strncmp(spec, "write:", 6) == 0) {
		which = 0;
		p = spec + 6;
	} else if (strncmp(spec, "sync:", 5) == 0) {
		which = 1;
		p = spec + 5;
	} else {
		return cg_err_set(err, CG_ERR_ARG, "CROSSGATE_FAULT_IO: expected write:N or sync:N, with an "
		    "optional '+'");
	}
	n = strtoul(p, &end, 10);
	if (end == p || n == 0 || (*end != '\0' && strcmp(end, "+") != 0))
		return cg_err_set(err, CG_ERR_ARG, "CROSSGATE_FAULT_IO: N must be a whole number from 1, "
		    "optionally followed by '+'");
	fault_at[which] = n;
	fault_sticky[which] = *end == '+';
	return 0;
}

static int faultvfs_register(const char *spec, struct cg_err *err);

int
faultvfs_name(const char **name, struct cg_err *err)
{
	const char *spec = getenv("CROSSGATE_FAULT_IO");
	int r = 0;

	*name = NULL;
	if (spec == NULL || *spec == '\0')
		return 0;
	pthread_mutex_lock(&fault_lock_init);
	r = faultvfs_register(spec, err);
	pthread_mutex_unlock(&fault_lock_init);
	if (r == 0)
		*name = FAULTVFS_NAME;
	return r;
}

/* Once per process, under fault_lock_init. */
static int
faultvfs_register(const char *spec, struct cg_err *err)
{
	int r;

	if (fault_real == NULL) {
		if ((r = fault_parse(spec, err)) != 0)
			return r;
		if ((fault_real = sqlite3_vfs_find(NULL)) == NULL)
			return cg_err_set(err, CG_ERR_DB, "no default SQLite VFS to wrap");
		fault_io = (sqlite3_io_methods){ 3, fault_close, fault_read, fault_write, fault_truncate,
			fault_sync, fault_size, fault_lock, fault_unlock, fault_check_lock, fault_control,
			fault_sector, fault_caps, fault_shm_map, fault_shm_lock, fault_shm_barrier,
			fault_shm_unmap, fault_fetch, fault_unfetch };
		fault_vfs = (sqlite3_vfs){ 2, (int)sizeof(struct fault_file) + fault_real->szOsFile,
			fault_real->mxPathname, NULL, FAULTVFS_NAME, NULL, fault_open, fault_delete,
			fault_access, fault_fullpath, NULL, NULL, NULL, NULL, fault_random, fault_sleep,
			fault_time, fault_last_error, fault_time64, NULL, NULL, NULL };
		if (sqlite3_vfs_register(&fault_vfs, 0) != SQLITE_OK)
			return cg_err_set(err, CG_ERR_DB, "cannot register the fault-injection VFS");
	}
	return 0;
}

unsigned long
faultvfs_count(int sync)
{
	return atomic_load(&fault_seen[sync ? 1 : 0]);
}

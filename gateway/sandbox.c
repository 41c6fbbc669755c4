/* sandbox.c - see sandbox.h */
#define _GNU_SOURCE   /* O_PATH, CLONE_THREAD, process_vm_readv */
#include "gateway/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/landlock.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <jansson.h>
#include <seccomp.h>
#include <sqlite3.h>
#include <termios.h>

#include "gateway/monitor.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)      /* ABI 3; Debian 12's headers stop at ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)     /* ABI 5 */
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

#define SANDBOX_FILE_RIGHTS(t) (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | (t))

/* Allow `rights` (masked by what the ruleset handles) on path, which must exist. */
static int
sandbox_ll_allow(int ruleset, const char *path, uint64_t rights, uint64_t handled, struct cg_err *err)
{
	struct landlock_path_beneath_attr pb;
	int fd, r = 0;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return cg_err_set(err, CG_ERR_IO, "landlock: %s: %s", path, strerror(errno));
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = rights & handled;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
		r = cg_err_set(err, CG_ERR_IO, "landlock: a rule for %s: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* 1: applied; 0: the kernel has no Landlock (why_not says so); negative: an error. */
static int
sandbox_landlock(const char *db_path, const char *spool_dir, char *why_not, size_t why_size, struct cg_err *err)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	static const char *const dev[] = { "/dev/null", "/dev/urandom" };
	struct landlock_ruleset_attr attr;
	char path[4200];
	uint64_t handled, file_rights, dir_rights;
	long abi;
	size_t i;
	int rs, r = 0;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		snprintf(why_not, why_size, "the kernel has no Landlock (%s)", strerror(errno));
		return 0;
	}
	handled = (LANDLOCK_ACCESS_FS_REFER << 1) - 1;   /* ABI 1's thirteen rights and REFER */
	if (abi < 2)
		handled &= ~LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	file_rights = SANDBOX_FILE_RIGHTS(LANDLOCK_ACCESS_FS_TRUNCATE);
	dir_rights = file_rights | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = handled;
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0)) < 0)
		return cg_err_set(err, CG_ERR_IO, "landlock: create a ruleset: %s", strerror(errno));
	/* The database and the files SQLite keeps beside it in WAL mode (all exist while the store is open). */
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && r == 0; i++) {
		snprintf(path, sizeof(path), "%s%s", db_path, sfx[i]);
		if (access(path, F_OK) == 0)
			r = sandbox_ll_allow(rs, path, file_rights, handled, err);
	}
	for (i = 0; i < sizeof(dev) / sizeof(dev[0]) && r == 0; i++)
		r = sandbox_ll_allow(rs, dev[i], SANDBOX_FILE_RIGHTS(0), handled, err);
	if (r == 0)
		r = sandbox_ll_allow(rs, spool_dir, dir_rights, handled, err);
	if (r == 0 && syscall(SYS_landlock_restrict_self, rs, 0) != 0)
		r = cg_err_set(err, CG_ERR_IO, "landlock: restrict: %s", strerror(errno));
	close(rs);
	return r == 0 ? 1 : r;
}

/* The system calls the worker makes once set up; the rest fail with EPERM. */
static const int sandbox_allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
	SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(open), SCMP_SYS(openat),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(fstatfs),
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(getcwd),
	SCMP_SYS(fcntl), SCMP_SYS(flock), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
	SCMP_SYS(fallocate), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(getdents64), SCMP_SYS(fchmod), SCMP_SYS(umask),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk),
	SCMP_SYS(mlock), SCMP_SYS(munlock), SCMP_SYS(mlock2), SCMP_SYS(mincore), SCMP_SYS(memfd_create),
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(restart_syscall), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(epoll_create1),
	SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2), SCMP_SYS(pipe),
	SCMP_SYS(pipe2), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(sendmsg), SCMP_SYS(shutdown), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	SCMP_SYS(getrandom), SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(getrlimit), SCMP_SYS(getuid),
	SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_yield),
#ifdef CG_ASAN
	/* the sanitizers' runtime (reports, shadow memory), in the test builds only */
	SCMP_SYS(readlinkat), SCMP_SYS(sched_setaffinity),
#endif
};

static int
sandbox_seccomp(struct cg_err *err)
{
	scmp_filter_ctx ctx;
	pid_t self = getpid();
	size_t i;
	int r = 0;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "seccomp: out of memory");
	/* every thread of the worker, now and later (threads inherit the filter) */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		r = cg_err_set(err, CG_ERR_INTERNAL, "seccomp: cannot synchronize the threads' filters");
	for (i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]) && r == 0; i++) {
		if (sandbox_allowed[i] < 0)   /* a call this architecture does not have */
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_allowed[i], 0) != 0)
			r = cg_err_set(err, CG_ERR_INTERNAL, "seccomp: cannot allow system call %d", sandbox_allowed[i]);
	}
	/*
	 * Threads, not processes: glibc falls back from clone3 (whose flags a
	 * filter cannot see) to clone, allowed only with CLONE_THREAD.
	 */
	if (r == 0 && (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0 ||
	    /* signals to itself only (raise, abort, pthread_kill) */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self, 0)) != 0 ||
	    /* reading back what holds (the "listening" log line): not dumpable, no core */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_DUMPABLE, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0, 0)) != 0 ||
	    /* no TIOCSTI and the like: only what isatty() and non-blocking sockets ask */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONBIO, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS, 0)) != 0))
		r = cg_err_set(err, CG_ERR_INTERNAL, "seccomp: cannot add the argument rules");
	if (r == 0 && seccomp_load(ctx) != 0)
		r = cg_err_set(err, CG_ERR_INTERNAL, "seccomp: cannot load the filter: %s", strerror(errno));
	seccomp_release(ctx);
	return r;
}

int
sandbox_apply(const char *db_path, const char *spool_dir, unsigned *applied, char *why_not, size_t why_size,
    struct cg_err *err)
{
	static char *tmpdir;
	int r;

	*applied = 0;
	why_not[0] = '\0';
	/*
	 * SQLite's temporary files (TEMP tables) go to the spool, the one
	 * directory the worker may create files in; set before any thread runs.
	 */
	if (tmpdir == NULL && (tmpdir = sqlite3_mprintf("%s", spool_dir)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	sqlite3_temp_directory = tmpdir;
	if ((r = sandbox_landlock(db_path, spool_dir, why_not, why_size, err)) < 0)
		return r;
	if (r == 1)
		*applied |= SANDBOX_LANDLOCK;
	/* libseccomp sets no_new_privs itself; said here too, as Landlock without seccomp needs it */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return cg_err_set(err, CG_ERR_INTERNAL, "no_new_privs: %s", strerror(errno));
	if ((r = sandbox_seccomp(err)) != 0)
		return r;
	*applied |= SANDBOX_SECCOMP;
	return 0;
}

/* An address the monitor has mapped too: the worker is its fork, the binary is where it was. */
static volatile unsigned char sandbox_probe_target[64] = { 1 };

static void
sandbox_probe_log(FILE *log, const char *what, size_t index, int allowed, int e)
{
	monitor_log(log, allowed ? "error" : "info", "sandbox-probe", "process", json_string("worker"), "what",
	    json_string(what), "index", json_integer((json_int_t)index), "outcome", json_string(allowed ? "allowed" :
	    "denied"), "errno", json_string(allowed ? "" : strerror(e)), NULL);
}

void
sandbox_probe(const char *const *files, size_t n, pid_t monitor, FILE *log)
{
	unsigned char buf[sizeof(sandbox_probe_target)];
	struct iovec local = { buf, sizeof(buf) }, remote = { (void *)sandbox_probe_target, sizeof(buf) };
	char path[64];
	ssize_t got;
	size_t i;
	int fd;

	for (i = 0; i < n; i++) {
		fd = open(files[i], O_RDONLY | O_CLOEXEC);
		sandbox_probe_log(log, "open-key-file", i, fd >= 0, errno);
		if (fd >= 0)
			close(fd);
	}
	got = process_vm_readv(monitor, &local, 1, &remote, 1, 0);
	sandbox_probe_log(log, "read-monitor-memory", 0, got == (ssize_t)sizeof(buf), errno);
	/* the other way in: the monitor's memory as a file */
	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)monitor);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
		got = pread(fd, buf, sizeof(buf), (off_t)(uintptr_t)sandbox_probe_target);
	sandbox_probe_log(log, "open-monitor-mem", 0, fd >= 0 && got == (ssize_t)sizeof(buf), errno);
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, sizeof(buf));
}

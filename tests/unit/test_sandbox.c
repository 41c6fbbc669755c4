/*
 * test_sandbox.c - the worker's sandbox does what sandbox.h says: in a child
 * sandboxed over a scratch database and spool, the store and the spool work,
 * threads start; opening a file elsewhere, exec, fork, a new socket, a
 * signal to another process, ptrace and TIOCSTI are refused.  Each attempt
 * is also made unsandboxed, where it succeeds, so that a refusal is the
 * sandbox's.  Landlock checks are skipped, saying so, where the kernel lacks it.
 */
#define _GNU_SOURCE   /* TIOCSTI's ioctl, clone flags */
#include "gateway/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>

#include "tests/unit/cgtest.h"

enum { T_DB, T_SPOOL, T_THREAD, T_OUTSIDE, T_EXEC, T_FORK, T_SOCKET, T_KILL, T_PTRACE, T_TIOCSTI, T_N };
static const char *const names[T_N] = { "database", "spool", "thread", "file outside", "exec", "fork", "socket",
	"kill parent", "ptrace parent", "TIOCSTI" };

static void *
nothing(void *arg)
{
	return arg;
}

/* Each attempt: 1 done, 0 refused. */
static void
attempts(const char *dir, const char *db, unsigned char out[T_N])
{
	char path[600];
	sqlite3 *h = NULL;
	pthread_t t;
	pid_t p;
	int fd, st;
	char c = 0;

	out[T_DB] = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_exec(h, "INSERT INTO t VALUES (1)", NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(h);
	snprintf(path, sizeof(path), "%s/spool/f.tmp", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	out[T_SPOOL] = fd >= 0 && write(fd, "x", 1) == 1 && unlink(path) == 0;
	if (fd >= 0)
		close(fd);
	out[T_THREAD] = pthread_create(&t, NULL, nothing, NULL) == 0 && pthread_join(t, NULL) == 0;
	snprintf(path, sizeof(path), "%s/keys/secret.key", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	out[T_OUTSIDE] = fd >= 0;
	if (fd >= 0)
		close(fd);
	p = fork();
	if (p == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(3);   /* exec refused */
	}
	out[T_FORK] = p > 0;
	out[T_EXEC] = p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	out[T_SOCKET] = fd >= 0;
	if (fd >= 0)
		close(fd);
	out[T_KILL] = kill(getppid(), 0) == 0;
	/* SEIZE does not stop the parent; the child's exit detaches */
	out[T_PTRACE] = ptrace(PTRACE_SEIZE, getppid(), NULL, NULL) == 0;
	/* TIOCSTI needs a terminal; EPERM tells the filter from ENOTTY, which the kernel gives without a tty */
	out[T_TIOCSTI] = !(ioctl(STDIN_FILENO, TIOCSTI, &c) != 0 && errno == EPERM);
}

/* Run attempts() in a child, sandboxed or not; *applied gets the layers. */
static int
run(const char *dir, const char *db, int sandboxed, unsigned char out[T_N], unsigned *applied)
{
	struct cg_err err;
	char spool[600], why[256];
	int pfd[2], st;
	unsigned char res[T_N + 1];
	pid_t p;

	snprintf(spool, sizeof(spool), "%s/spool", dir);
	memset(res, 0, sizeof(res));
	if (pipe(pfd) != 0 || (p = fork()) < 0)
		return -1;
	if (p == 0) {
		close(pfd[0]);
		memset(res, 0, sizeof(res));
		if (sandboxed && sandbox_apply(db, spool, applied, why, sizeof(why), &err) != 0) {
			fprintf(stderr, "sandbox_apply: %s\n", err.msg);
			_exit(2);
		}
		if (sandboxed && !(*applied & SANDBOX_LANDLOCK))
			fprintf(stderr, "skip: Landlock checks (%s)\n", why);
		res[T_N] = (unsigned char)*applied;
		attempts(dir, db, res);
		_exit(write(pfd[1], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
	}
	close(pfd[1]);
	st = read(pfd[0], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : -1;
	close(pfd[0]);
	waitpid(p, NULL, 0);
	memcpy(out, res, T_N);
	*applied = res[T_N];
	return st;
}

int
main(void)
{
	char dir[] = "/tmp/cg_sandbox_XXXXXX", path[600], db[600];
	unsigned char free_[T_N], boxed[T_N];
	unsigned applied = 0;
	sqlite3 *h = NULL;
	int i, fd;

	if (getenv("CG_VALGRIND") != NULL) {
		/* make valgrind: valgrind emulates neither seccomp nor Landlock */
		printf("skip: under valgrind, which has no seccomp or Landlock\n");
		CGT_DONE();
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
		printf("skip: this kernel has no seccomp (the gateway's worker refuses to serve here)\n");
		CGT_DONE();
	}
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/spool", dir);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/keys", dir);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/keys/secret.key", dir);
	CHECK((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0 && write(fd, "k", 1) == 1 && close(fd) == 0);
	snprintf(db, sizeof(db), "%s/gw.db", dir);
	/* the store as the worker has it: open in WAL mode (so -wal and -shm exist) */
	CHECK(sqlite3_open(db, &h) == SQLITE_OK);
	CHECK(sqlite3_exec(h, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);

	CHECK(run(dir, db, 0, free_, &applied) == 0);
	for (i = 0; i < T_N; i++) {
		if (i == T_TIOCSTI || (i == T_PTRACE && geteuid() != 0))
			continue;   /* no terminal in tests; ptrace of a non-dumpable parent needs root */
		if (!free_[i])
			fprintf(stderr, "unsandboxed, '%s' failed: the check below would prove nothing\n", names[i]);
		CHECK(free_[i]);
	}
	CHECK(run(dir, db, 1, boxed, &applied) == 0);
	CHECK(applied & SANDBOX_SECCOMP);
	for (i = 0; i < T_N; i++) {
		int want = i == T_DB || i == T_SPOOL || i == T_THREAD;

		if (i == T_OUTSIDE && !(applied & SANDBOX_LANDLOCK))
			continue;
		if (boxed[i] != want)
			fprintf(stderr, "sandboxed, '%s' was %s\n", names[i], boxed[i] ? "done" : "refused");
		CHECK_EQ_INT(boxed[i], want);
	}
	sqlite3_close(h);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CHECK(system(path) == 0);
	CGT_DONE();
}

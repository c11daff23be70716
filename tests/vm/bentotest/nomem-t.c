// SPDX-License-Identifier: GPL-2.0-only
/*
 * nomem-t: a workload on a logfs mount while this process's allocations fail. Two injectors:
 * `logfs`, the module's own fail_alloc_* parameters (bento/bento_fault.h), which fail the Rust
 * side's allocations only; `kernel`, bento_kfail.ko (kfail.c: failslab and fail_page_alloc with
 * a task filter, which the Debian kernels lack), which fails any slab or page allocation the
 * process's system calls make. Every call must succeed or fail with ENOMEM; each runs only after
 * the calls it depends on succeeded, so any other errno is a bug. Files are written with a
 * pattern (byte k of every file is k * 7 % 251) that `nomem-t check` verifies once the
 * injection is off. The work runs in a child, so that the parent can turn the injection off
 * and report (a write to sysfs or a pipe needs memory too); the child allocates no user memory
 * under injection (its memory is locked and touched first, directories are read with getdents64
 * into a static buffer, results go to shared memory): a page fault that cannot get a page table
 * would be retried forever.
 *
 *   nomem-t work DIR EVERY ROUNDS [logfs|kernel]
 *                                   inject into every EVERY-th allocation of this process
 *                                   during ROUNDS rounds under DIR (default injector: logfs);
 *                                   prints "calls N enomem M injected K", lists other failures
 *   nomem-t check DIR               every regular file under DIR holds the pattern
 *
 * Exit status: 0 when all is well, 1 on a failure other than ENOMEM (or a bad file), 2 on
 * usage or setup errors.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The injector's parameters: the directory and the names of pid, interval, times, injected. */
struct injector {
	const char *name, *dir, *pid, *interval, *times, *injected;
};

static const struct injector injectors[] = {
	{ "logfs", "/sys/module/logfs/parameters/", "fail_alloc_pid", "fail_alloc_interval",
	  "fail_alloc_times", "fail_alloc_failed" },
	{ "kernel", "/sys/module/bento_kfail/parameters/", "pid", "interval", "times", "injected" },
};
static const struct injector *inj = &injectors[0];

/* The child's results, in memory shared with the parent. */
static struct results {
	unsigned long calls, enomem, bad;
	size_t len;
	char out[16384];	/* the BAD lines */
} *res;

static void bad_line(const char *fmt, ...)
{
	va_list ap;
	int n;

	res->bad++;
	va_start(ap, fmt);
	n = vsnprintf(res->out + res->len, sizeof(res->out) - res->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		res->len += (size_t)n < sizeof(res->out) - res->len ? (size_t)n : 0;
}

static int set_param(const char *name, long v)
{
	char path[128], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s%s", inj->dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld", v);
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return n;
}

static long get_param(const char *name)
{
	char path[128], buf[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s%s", inj->dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		return -1;
	close(fd);
	return atol(buf);
}

/* Count a call's result: 1 if it succeeded. */
static int ok(const char *what, const char *path, long r)
{
	res->calls++;
	if (r >= 0)
		return 1;
	if (errno == ENOMEM) {
		res->enomem++;
		return 0;
	}
	bad_line("BAD %s %s: %s\n", what, path, strerror(errno));
	return 0;
}

static unsigned char pattern(size_t off)
{
	return off * 7 % 251;
}

/* Write the pattern up to size; returns the bytes written before a failure. */
static size_t write_pattern(int fd, const char *path, size_t size)
{
	static unsigned char buf[65536];
	size_t off = 0;

	while (off < size) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		w = pwrite(fd, buf, n, off);
		if (!ok("write", path, w) || w == 0)
			break;
		off += w;
	}
	return off;
}

static void round_(const char *dir, int r)
{
	static const size_t sizes[] = { 100, 3000, 70000, 300000, 2000000 };
	char d[256], p[300], q[300];
	int have[5] = { 0 };
	char list[512], val[64];

	snprintf(d, sizeof(d), "%s/r%d", dir, r);
	if (!ok("mkdir", d, mkdir(d, 0755)))
		return;
	for (int j = 0; j < 5; j++) {
		int fd;
		size_t w;

		snprintf(p, sizeof(p), "%s/f%d", d, j);
		fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (!ok("create", p, fd))
			continue;
		have[j] = 1;
		w = write_pattern(fd, p, sizes[j]);
		if (j == 3 && w >= 123457)
			ok("ftruncate", p, ftruncate(fd, 123457));
		if (j == 4)
			ok("fsync", p, fsync(fd));
		ok("close", p, close(fd));
		if (ok("setxattr", p, setxattr(p, "user.k", "value", 5, 0))) {
			ssize_t n = getxattr(p, "user.k", val, sizeof(val));

			if (ok("getxattr", p, n) && (n != 5 || memcmp(val, "value", 5)))
				bad_line("BAD getxattr %s: wrong value\n", p);
		}
		ok("listxattr", p, listxattr(p, list, sizeof(list)));
		/* Read back through the file system, not the page cache. */
		fd = open(p, O_RDONLY);
		if (ok("open", p, fd)) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			ok("read", p, read(fd, list, sizeof(list)));
			close(fd);
		}
	}
	if (have[0]) {
		snprintf(p, sizeof(p), "%s/f0", d);
		snprintf(q, sizeof(q), "%s/moved", d);
		if (ok("rename", p, rename(p, q))) {
			snprintf(p, sizeof(p), "%s/hard", d);
			ok("link", p, link(q, p));
		}
	}
	snprintf(p, sizeof(p), "%s/sym", d);
	if (ok("symlink", p, symlink("f1", p)))
		ok("readlink", p, readlink(p, list, sizeof(list)));
	if (have[2]) {
		snprintf(p, sizeof(p), "%s/f2", d);
		ok("unlink", p, unlink(p));
	}
	snprintf(p, sizeof(p), "%s/empty", d);
	if (ok("mkdir", p, mkdir(p, 0755)))
		ok("rmdir", p, rmdir(p));
	{
		static char dents[8192];
		int dfd = open(d, O_RDONLY | O_DIRECTORY);

		if (ok("opendir", d, dfd)) {
			long n;

			while ((n = syscall(SYS_getdents64, dfd, dents, sizeof(dents))) > 0)
				;
			ok("readdir", d, n);
			close(dfd);
		}
	}
	{
		struct stat st;

		ok("stat", d, stat(d, &st));
	}
}

static int check(const char *dir)
{
	static unsigned char buf[65536];
	DIR *dh = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!dh) {
		printf("BAD opendir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(dh))) {
		char p[1024];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st)) {
			printf("BAD lstat %s: %s\n", p, strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			rc |= check(p);
		} else if (S_ISREG(st.st_mode)) {
			int fd = open(p, O_RDONLY);
			size_t off = 0;
			ssize_t n;

			if (fd < 0) {
				printf("BAD open %s: %s\n", p, strerror(errno));
				rc = 1;
				continue;
			}
			while ((n = read(fd, buf, sizeof(buf))) > 0) {
				for (ssize_t i = 0; i < n; i++)
					if (buf[i] != pattern(off + i)) {
						printf("BAD %s: byte %zu\n", p, off + i);
						rc = 1;
						n = -1;
						break;
					}
				if (n < 0)
					break;
				off += n;
			}
			if (n < 0 && !rc) {
				printf("BAD read %s: %s\n", p, strerror(errno));
				rc = 1;
			}
			close(fd);
		}
	}
	closedir(dh);
	return rc;
}

/* Touch the stack the work will use, so that no page fault needs memory under injection. */
static __attribute__((noinline)) void touch_stack(void)
{
	char pad[256 * 1024];

	memset(pad, 1, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");	/* keep the stores */
}

/* The child: lock its memory, say so, wait for the parent to turn the injection on, work. */
static void child(int ready, int go, const char *dir, int rounds)
{
	char c;

	touch_stack();
	res->len = 0;	/* a write fault on the shared page now, not under injection */
	if (mlockall(MCL_CURRENT | MCL_FUTURE)) {
		perror("nomem-t: mlockall");
		_exit(2);
	}
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(2);
	for (int r = 0; r < rounds; r++)
		round_(dir, r);
	_exit(0);
}

int main(int argc, char **argv)
{
	int ready[2], go[2], status;
	char c;
	pid_t pid;

	if (argc == 3 && !strcmp(argv[1], "check"))
		return check(argv[2]);
	if (argc == 6) {
		inj = NULL;
		for (size_t i = 0; i < sizeof(injectors) / sizeof(injectors[0]); i++)
			if (!strcmp(injectors[i].name, argv[5]))
				inj = &injectors[i];
	}
	if ((argc != 5 && argc != 6) || strcmp(argv[1], "work") || !inj) {
		fprintf(stderr, "usage: nomem-t work DIR EVERY ROUNDS [logfs|kernel] | "
				"nomem-t check DIR\n");
		return 2;
	}
	if (mkdir(argv[2], 0755) && errno != EEXIST) {
		perror(argv[2]);
		return 2;
	}
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED || pipe(ready) || pipe(go)) {
		perror("nomem-t");
		return 2;
	}
	memset(res, 0, sizeof(*res));
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("nomem-t: fork");
		return 2;
	}
	if (!pid)
		child(ready[1], go[0], argv[2], atoi(argv[4]));
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "nomem-t: the child did not start\n");
		return 2;
	}
	if (set_param(inj->interval, atol(argv[3])) || set_param(inj->times, -1) ||
	    set_param(inj->injected, 0) || set_param(inj->pid, pid)) {
		fprintf(stderr, "nomem-t: %s injector's parameters (%s): %s\n", inj->name, inj->dir,
			strerror(errno));
		kill(pid, SIGKILL);
		return 2;
	}
	if (write(go[1], "g", 1) != 1 || waitpid(pid, &status, 0) != pid) {
		perror("nomem-t: starting the child");
		return 2;
	}
	set_param(inj->pid, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "nomem-t: the child failed (status %#x)\n", status);
		return 2;
	}
	fwrite(res->out, 1, res->len, stdout);
	printf("calls %lu enomem %lu injected %ld\n", res->calls, res->enomem,
	       get_param(inj->injected));
	return res->bad ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * nomem-t: a workload on a logfs mount while logfs.ko fails this process's allocations
 * (the module's fail_alloc_* parameters, bento/bento_fault.h: the Debian kernels have no
 * failslab). Every call must succeed or fail with ENOMEM; each runs only after the calls it
 * depends on succeeded, so any other errno is a bug. Files are written with a pattern (byte k of
 * every file is k * 7 % 251) that `nomem-t check` verifies once the injection is off.
 *
 *   nomem-t work DIR EVERY ROUNDS   inject into every EVERY-th allocation of this process
 *                                   during ROUNDS rounds under DIR; prints
 *                                   "calls N enomem M injected K" and lists other failures
 *   nomem-t check DIR               every regular file under DIR holds the pattern
 *
 * Exit status: 0 when all is well, 1 on a failure other than ENOMEM (or a bad file), 2 on
 * usage or setup errors.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PARAM "/sys/module/logfs/parameters/"

static unsigned long calls, enomem, bad;

static int set_param(const char *name, long v)
{
	char path[128], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), PARAM "%s", name);
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

	snprintf(path, sizeof(path), PARAM "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		return -1;
	close(fd);
	return atol(buf);
}

/* Count a call's result: 1 if it succeeded. */
static int ok(const char *what, const char *path, long r)
{
	calls++;
	if (r >= 0)
		return 1;
	if (errno == ENOMEM) {
		enomem++;
		return 0;
	}
	bad++;
	printf("BAD %s %s: %s\n", what, path, strerror(errno));
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

			if (ok("getxattr", p, n) && (n != 5 || memcmp(val, "value", 5))) {
				bad++;
				printf("BAD getxattr %s: wrong value\n", p);
			}
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
		DIR *dh = opendir(d);

		if (ok("opendir", d, dh ? 0 : -1)) {
			errno = 0;
			while (readdir(dh))
				;
			ok("readdir", d, errno ? -1 : 0);
			closedir(dh);
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

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "check"))
		return check(argv[2]);
	if (argc != 5 || strcmp(argv[1], "work")) {
		fprintf(stderr, "usage: nomem-t work DIR EVERY ROUNDS | nomem-t check DIR\n");
		return 2;
	}
	if (mkdir(argv[2], 0755) && errno != EEXIST) {
		perror(argv[2]);
		return 2;
	}
	if (set_param("fail_alloc_interval", atol(argv[3])) || set_param("fail_alloc_times", -1) ||
	    set_param("fail_alloc_failed", 0) || set_param("fail_alloc_pid", getpid())) {
		perror("nomem-t: logfs fail_alloc_* parameters");
		return 2;
	}
	for (int r = 0; r < atoi(argv[4]); r++)
		round_(argv[2], r);
	set_param("fail_alloc_pid", 0);
	printf("calls %lu enomem %lu injected %ld\n", calls, enomem, get_param("fail_alloc_failed"));
	return bad ? 1 : 0;
}

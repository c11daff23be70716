// SPDX-License-Identifier: GPL-2.0-only
/*
 * down-t: shutdown and freeze for the kernel suite's part s (tests/vm/suite/part-s.sh).
 *
 *   down-t goingdown PATH FLAG    FS_IOC_GOINGDOWN with FLAG (0 fullsync, 1 metaflush,
 *                                 2 nologflush) on PATH (or on descriptor 3 for "fd3": a
 *                                 shut-down mount opens nothing); prints "ok" or "errno=NAME"
 *   down-t goingdown-nobody PATH FLAG   the same as uid 65534 (no CAP_SYS_ADMIN)
 *   down-t freeze PATH / thaw PATH      FIFREEZE / FITHAW; "ok" or "errno=NAME"
 *   down-t sum DEV                the whole device read with O_DIRECT (past any cache), as a
 *                                 64-bit FNV-1a hash
 *   down-t calls DIR              calls on a shut-down mount, one word each, "name=ERRNO"
 *                                 ("name=ok" when one succeeds): through descriptor 3 (the
 *                                 caller opened a file of the mount read-write before the
 *                                 shutdown) read, write, mmap, fsync; then open, create,
 *                                 mkdir, readdir, unlink, truncate, setxattr, statfs in DIR
 *
 * Exit status: 0 (the result is what it prints), 2 on usage errors.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/fs.h>

#ifndef FS_IOC_GOINGDOWN
#define FS_IOC_GOINGDOWN _IOR('X', 125, uint32_t)
#endif

static const char *ename(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "ok";
	case EIO: return "EIO";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case EROFS: return "EROFS";
	case EACCES: return "EACCES";
	}
	snprintf(buf, sizeof(buf), "%d", e);
	return buf;
}

static void result(int r)
{
	if (r < 0)
		printf("errno=%s\n", ename(errno));
	else
		printf("ok\n");
}

static int cmd_ioctl(const char *path, unsigned long req, uint32_t *arg)
{
	int fd = strcmp(path, "fd3") ? open(path, O_RDONLY) : dup(3), r;

	if (fd < 0) {
		printf("errno=%s\n", ename(errno));
		return 0;
	}
	r = ioctl(fd, req, arg);
	result(r);
	close(fd);
	return 0;
}

static int cmd_sum(const char *dev)
{
	size_t sz = 1 << 20;
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char *buf;
	ssize_t n, i;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0 || posix_memalign((void **)&buf, 4096, sz)) {
		perror(dev);
		return 2;
	}
	while ((n = read(fd, buf, sz)) > 0)
		for (i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
	if (n < 0) {
		perror(dev);
		return 2;
	}
	printf("%016" PRIx64 "\n", h);
	return 0;
}

static void say(const char *name, int r)
{
	printf("%s%s=%s", strcmp(name, "read") ? " " : "", name, ename(r < 0 ? errno : 0));
}

static int cmd_calls(const char *dir)
{
	char path[4096], b[4096] = "x";
	struct statfs st;
	void *m;
	DIR *d;
	int fd;

	say("read", pread(3, b, sizeof(b), 0) < 0 ? -1 : 0);
	say("write", pwrite(3, b, sizeof(b), 0) < 0 ? -1 : 0);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
	say("mmap", m == MAP_FAILED ? -1 : 0);
	if (m != MAP_FAILED)
		munmap(m, 4096);
	say("fsync", fsync(3));
	snprintf(path, sizeof(path), "%s/synced", dir);
	fd = open(path, O_RDONLY);
	say("open", fd);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/new", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	say("create", fd);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/newdir", dir);
	say("mkdir", mkdir(path, 0755));
	d = opendir(dir);
	errno = d ? 0 : errno;
	say("readdir", d ? (readdir(d) ? 0 : (errno ? -1 : 0)) : -1);
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "%s/loose", dir);
	say("unlink", unlink(path));
	snprintf(path, sizeof(path), "%s/synced", dir);
	say("truncate", truncate(path, 1));
	say("setxattr", setxattr(path, "user.x", "1", 1, 0));
	say("statfs", statfs(dir, &st));
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t flag;

	if (argc == 4 && !strncmp(argv[1], "goingdown", 9)) {
		flag = strtoul(argv[3], NULL, 0);
		if (!strcmp(argv[1], "goingdown-nobody") && (setgid(65534) || setuid(65534))) {
			perror("setuid");
			return 2;
		}
		return cmd_ioctl(argv[2], FS_IOC_GOINGDOWN, &flag);
	}
	if (argc == 3 && !strcmp(argv[1], "freeze"))
		return cmd_ioctl(argv[2], FIFREEZE, &flag);
	if (argc == 3 && !strcmp(argv[1], "thaw"))
		return cmd_ioctl(argv[2], FITHAW, &flag);
	if (argc == 3 && !strcmp(argv[1], "sum"))
		return cmd_sum(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "calls"))
		return cmd_calls(argv[2]);
	fprintf(stderr, "down-t: bad command (see the source for usage)\n");
	return 2;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * bento-t: small file-system test helper for the bentofs VM test (static, no dependencies).
 * Each command exits 0 on success; on failure it prints "bento-t: <what>: <errno name>" and
 * exits 1. Commands that expect an error print "errno=<NAME>" and exit 0 (or 1 if none).
 *
 *   rename2 none|noreplace|exchange|whiteout OLD NEW
 *   setx PATH NAME VALUE [create|replace] | getx PATH NAME | listx PATH | rmx PATH NAME
 *   sizex PATH NAME                     length of a value (getxattr with size 0)
 *   btime PATH                          statx: "BTIME MTIME" in nanoseconds; fails without
 *                                       STATX_BTIME in the reply
 *   pwrite PATH OFF LEN SEED            pattern write (file created if missing)
 *   pcheck PATH OFF LEN SEED            pattern check
 *   zcheck PATH OFF LEN                 zeroes check
 *   mmapw PATH SIZE SEED                ftruncate, write the pattern through a shared mapping,
 *                                       msync, munmap, check with read()
 *   mmapr PATH OFF LEN SEED             check the pattern through a read-only mapping
 *   unlinkopen PATH                     write, unlink, read back through the open file
 *   getdents DIR BUFSIZE                count entries with getdents64 and a small buffer
 *   utimens PATH ATIME MTIME            set times (seconds)
 *   punch PATH OFF LEN                  fallocate(PUNCH_HOLE|KEEP_SIZE)
 *   falloc PATH OFF LEN [keep]          fallocate(0 or KEEP_SIZE)
 *   zero PATH OFF LEN [size]            fallocate(ZERO_RANGE|KEEP_SIZE, or ZERO_RANGE with
 *                                       size): errno= on failure
 *   collapse PATH OFF LEN               fallocate(COLLAPSE_RANGE): errno= on failure
 *   insert PATH OFF LEN                 fallocate(INSERT_RANGE): errno= on failure
 *   fsyncw PATH                         open, write 1 byte, fsync: expects an error (errno=)
 *   readerr PATH                        read: expects an error (errno=)
 *   fstype PATH                         statfs f_type in hex
 *   openx PATH                          open O_CREAT|O_EXCL: errno= on failure
 *   sizeof PATH                         st_size
 *   trunc PATH SIZE                     truncate(2) (by path; ftruncate(2) is another VFS path)
 *   mmaptail PATH sync|nosync           5000-byte file; a shared mapping writes 0xff past
 *                                       the end of the file in its last page
 *   fsx PATH OPS SEED                   random writes, truncates, mmap writes and reads, hole
 *                                       punches, zero, collapse and insert ranges (and their
 *                                       EINVAL cases), fsyncs and cache drops, every read
 *                                       checked against a model of the file (a small fsx);
 *                                       with FSX_NOSHIFT=1 in the environment no collapse or
 *                                       insert (for file systems without them: bento_memfs)
 *   asuser UID GID CMD...               run CMD with those ids and no groups
 *   fsx PATH OPS SEED MODEL             as fsx, and write the model of the final file to MODEL
 *   tree DIR                            a manifest of the tree under DIR, one line per entry in
 *                                       sorted order: path, type, mode, uid, gid, size, mtime
 *                                       (ns), nlink, the first path of a hard-link group,
 *                                       symlink target or device number, a 64-bit hash of the
 *                                       contents, xattrs (directory sizes are left out: they
 *                                       depend on the file system)
 *   hash PATH                           the content hash `tree` uses
 *   mount SRC DIR TYPE OPTS [ro]        mount(2): errno= on failure
 *   rmmod NAME                          delete_module(O_NONBLOCK): errno= on failure
 *   fsync PATH                          open, fsync, close
 *   fill PATH MAXMB                     write 1 MiB pieces until write(2) fails (or MAXMB
 *                                       MiB were written), then fsync and close; prints
 *                                       "write=<errno|ok> fsync=<errno|ok> close=<errno|ok>
 *                                       bytes=N"
 *   now                                 CLOCK_MONOTONIC in seconds (for timings)
 *   churn DIR STOPFILE OUT              a checked workload until STOPFILE exists: write,
 *                                       fsync, rename over slots, read back and compare,
 *                                       readdir, unlink, mkdir/xattr/rmdir; OUT gets the
 *                                       counts and the calls slower than 1 ms (live upgrade)
 *   insmod PATH                         finit_module: "start_ns end_ns", errno= on failure
 *   oploop statfs|getxattr|create PATH SECS   one cheap call into the file system, repeated
 *                                       for SECS s: "ops N secs S"
 *   ioerr read|write|stat PATH          read all / write 64 KiB + fsync (file created if
 *                                       missing) / stat: errno= (exit 1 and "no error" if none)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sys/xattr.h>
#include <grp.h>
#include <dirent.h>
#include <unistd.h>
#include <linux/fs.h>

static const char *ename(int e)
{
	static char buf[32];

	switch (e) {
#define E(x) case x: return #x
	E(EPERM); E(ENOENT); E(EIO); E(EEXIST); E(ENOTDIR); E(EISDIR); E(EINVAL); E(ENOSPC);
	E(EROFS); E(E2BIG); E(ENODATA); E(ERANGE); E(ENOTEMPTY); E(EBUSY); E(EXDEV);
	E(EOPNOTSUPP); E(EACCES); E(ENAMETOOLONG); E(EFBIG); E(ENODEV); E(ENOMEM);
	E(EAGAIN); E(EUCLEAN); E(ENXIO); E(EBADMSG); E(ENOTBLK); E(ESTALE); E(EDQUOT);
	E(EFAULT); E(EMLINK); E(ENOTTY); E(ESRCH); E(ETXTBSY);
#undef E
	}
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static void die(const char *what)
{
	fprintf(stderr, "bento-t: %s: %s\n", what, ename(errno));
	exit(1);
}

static void fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "bento-t: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

static unsigned char pat(unsigned long long off, unsigned long seed)
{
	unsigned long long x = (off / 7) * 2654435761ULL + seed * 40503ULL + off;

	return (unsigned char)(x ^ (x >> 13) ^ (x >> 29));
}

static unsigned long long num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end == 'K')
		v <<= 10;
	else if (*end == 'M')
		v <<= 20;
	return v;
}

static int expect_err(int ret)
{
	if (ret >= 0) {
		printf("no error\n");
		return 1;
	}
	printf("errno=%s\n", ename(errno));
	return 0;
}

static int cmd_pwrite(char **a, int check, int zero)
{
	unsigned long long off = num(a[1]), len = num(a[2]), done = 0;
	unsigned long seed = zero ? 0 : strtoul(a[3], NULL, 0);
	size_t bsz = 1 << 20;
	unsigned char *buf = malloc(bsz);
	int fd = open(a[0], check ? O_RDONLY : (O_WRONLY | O_CREAT), 0644);

	if (fd < 0)
		die("open");
	while (done < len) {
		size_t n = len - done < bsz ? len - done : bsz;
		ssize_t r;

		if (!check) {
			for (size_t i = 0; i < n; i++)
				buf[i] = pat(off + done + i, seed);
			r = pwrite(fd, buf, n, off + done);
			if (r != (ssize_t)n)
				die("pwrite");
		} else {
			r = pread(fd, buf, n, off + done);
			if (r < 0)
				die("pread");
			if (r != (ssize_t)n) {
				fprintf(stderr, "bento-t: short read at %llu: %zd of %zu\n",
					off + done, r, n);
				exit(1);
			}
			/* zeroes: compare in bulk first (fast under emulation) */
			if (zero && buf[0] == 0 && (n == 1 || !memcmp(buf, buf + 1, n - 1))) {
				done += n;
				continue;
			}
			for (size_t i = 0; i < n; i++) {
				unsigned char want = zero ? 0 : pat(off + done + i, seed);

				if (buf[i] != want) {
					fprintf(stderr, "bento-t: %s: mismatch at %llu: %#x, want %#x\n",
						a[0], off + done + i, buf[i], want);
					exit(1);
				}
			}
		}
		done += n;
	}
	if (close(fd))
		die("close");
	return 0;
}

static int cmd_mmapw(char **a)
{
	size_t size = num(a[1]);
	unsigned long seed = strtoul(a[2], NULL, 0);
	int fd = open(a[0], O_RDWR | O_CREAT, 0644);
	unsigned char *m, *buf;

	if (fd < 0)
		die("open");
	if (ftruncate(fd, size))
		die("ftruncate");
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < size; i++)
		m[i] = pat(i, seed);
	if (msync(m, size, MS_SYNC))
		die("msync");
	if (munmap(m, size))
		die("munmap");
	buf = malloc(size);
	if (pread(fd, buf, size, 0) != (ssize_t)size)
		die("pread");
	for (size_t i = 0; i < size; i++)
		if (buf[i] != pat(i, seed))
			fail("mmap data mismatch in %s", a[0]);
	close(fd);
	return 0;
}

static int cmd_mmapr(char **a)
{
	size_t off = num(a[1]), len = num(a[2]);
	unsigned long seed = strtoul(a[3], NULL, 0);
	int fd = open(a[0], O_RDONLY);
	unsigned char *m;

	if (fd < 0)
		die("open");
	m = mmap(NULL, off + len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	for (size_t i = off; i < off + len; i++)
		if (m[i] != pat(i, seed))
			fail("mmap read mismatch in %s", a[0]);
	munmap(m, off + len);
	close(fd);
	return 0;
}

static int cmd_mmaptail(char **a)
{
	unsigned char buf[5000], *m;
	int fd = open(a[0], O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(i, 1);
	if (write(fd, buf, sizeof(buf)) != sizeof(buf))
		die("write");
	m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap");
	memset(m + 5000, 0xff, 8192 - 5000);
	if (!strcmp(a[1], "sync") && msync(m, 8192, MS_SYNC))
		die("msync");
	munmap(m, 8192);
	close(fd);
	return 0;
}

/* ---- fsx -------------------------------------------------------------------------------- */

#define FSX_MAX (3 << 20)
static unsigned char *fsx_model, *fsx_buf;
static size_t fsx_size;
static unsigned long long fsx_rng;

static unsigned long fsx_rand(unsigned long n)
{
	fsx_rng = fsx_rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned long)((fsx_rng >> 33) % n);
}

static void fsx_fail(long op, const char *what, size_t off)
{
	fprintf(stderr, "bento-t: fsx op %ld: %s at %zu (size %zu)\n", op, what, off, fsx_size);
	exit(1);
}

static void fsx_check(int fd, long op)
{
	size_t off = fsx_rand(fsx_size + 1), len = fsx_rand(256 * 1024);
	struct stat st;
	ssize_t r;

	if (fstat(fd, &st) || (size_t)st.st_size != fsx_size)
		fsx_fail(op, "size", (size_t)st.st_size);
	if (off + len > fsx_size)
		len = fsx_size - off;
	r = pread(fd, fsx_buf, len, off);
	if (r != (ssize_t)len)
		fsx_fail(op, "short read", off);
	for (size_t i = 0; i < len; i++)
		if (fsx_buf[i] != fsx_model[off + i])
			fsx_fail(op, "data", off + i);
}

static int cmd_fsx(char **a)
{
	long ops = num(a[1]);
	int fd = open(a[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
	const char *noshift = getenv("FSX_NOSHIFT");
	int shift = !noshift || strcmp(noshift, "1");

	fsx_rng = num(a[2]);
	fsx_model = calloc(1, FSX_MAX + 256 * 1024);
	fsx_buf = malloc(FSX_MAX + 256 * 1024);
	if (fd < 0)
		die("open");
	for (long op = 0; op < ops; op++) {
		unsigned long kind = fsx_rand(100);
		size_t off, len;

		if (kind < 30) {				/* write */
			off = fsx_rand(FSX_MAX);
			len = 1 + fsx_rand(kind < 5 ? 512 * 1024 : 40000);
			if (off + len > FSX_MAX)
				len = FSX_MAX - off;
			for (size_t i = 0; i < len; i++)
				fsx_buf[i] = fsx_model[off + i] = (unsigned char)fsx_rand(256);
			if (pwrite(fd, fsx_buf, len, off) != (ssize_t)len)
				fsx_fail(op, "pwrite", off);
			if (off + len > fsx_size)
				fsx_size = off + len;
		} else if (kind < 40) {				/* truncate */
			size_t ns = fsx_rand(FSX_MAX);

			if (ftruncate(fd, ns))
				fsx_fail(op, "ftruncate", ns);
			if (ns < fsx_size)
				memset(fsx_model + ns, 0, fsx_size - ns);
			fsx_size = ns;
		} else if (kind < 50 && fsx_size) {		/* mmap write inside the file */
			size_t mlen = fsx_size;
			unsigned char *m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

			if (m == MAP_FAILED)
				fsx_fail(op, "mmap", 0);
			off = fsx_rand(fsx_size);
			len = 1 + fsx_rand(20000);
			if (off + len > fsx_size)
				len = fsx_size - off;
			for (size_t i = 0; i < len; i++)
				m[off + i] = fsx_model[off + i] = (unsigned char)fsx_rand(256);
			/* garbage past EOF in the last page: never file data */
			if (fsx_rand(2) && (mlen & 4095))
				memset(m + mlen, 0xee, 4096 - (mlen & 4095));
			if (fsx_rand(2) && msync(m, mlen, MS_SYNC))
				fsx_fail(op, "msync", 0);
			munmap(m, mlen);
		} else if (kind < 55 && fsx_size) {		/* mmap read */
			unsigned char *m = mmap(NULL, fsx_size, PROT_READ, MAP_SHARED, fd, 0);

			if (m == MAP_FAILED)
				fsx_fail(op, "mmap", 0);
			for (size_t i = 0; i < fsx_size; i += 1 + fsx_rand(8192))
				if (m[i] != fsx_model[i])
					fsx_fail(op, "mmap data", i);
			munmap(m, fsx_size);
		} else if (kind < 62 && fsx_size) {		/* punch */
			off = fsx_rand(fsx_size);
			len = 1 + fsx_rand(100000);
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
				fsx_fail(op, "punch", off);
			if (off + len > fsx_size)
				len = fsx_size - off;
			memset(fsx_model + off, 0, len);
		} else if (kind < 66) {				/* fallocate, may extend */
			off = fsx_rand(FSX_MAX);
			len = 1 + fsx_rand(100000);
			if (off + len > FSX_MAX)
				len = FSX_MAX - off;
			if (fallocate(fd, 0, off, len))
				fsx_fail(op, "fallocate", off);
			if (off + len > fsx_size)
				fsx_size = off + len;
		} else if (kind < 70) {
			if (fsync(fd))
				fsx_fail(op, "fsync", 0);
		} else if (kind < 73) {				/* drop the page cache */
			int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);

			if (fsx_rand(2) && fsync(fd))
				fsx_fail(op, "fsync", 0);
			if (dc >= 0) {
				if (write(dc, "1", 1) != 1)
					fsx_fail(op, "drop_caches", 0);
				close(dc);
			}
		} else if (kind < 76) {				/* zero range, may extend */
			int keep = fsx_rand(2);

			off = fsx_rand(FSX_MAX);
			len = 1 + fsx_rand(100000);
			if (off + len > FSX_MAX)
				len = FSX_MAX - off;
			if (fallocate(fd, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0),
				      off, len))
				fsx_fail(op, "zero range", off);
			if (!keep && off + len > fsx_size)
				fsx_size = off + len;
			if (off < fsx_size)
				memset(fsx_model + off, 0, (off + len > fsx_size ? fsx_size : off + len) - off);
		} else if (kind < 79 && fsx_size && shift) {	/* collapse range */
			int bad = !fsx_rand(8);

			off = fsx_rand(fsx_size / 4096 + 1) * 4096;
			len = (1 + fsx_rand(32)) * 4096 - (bad ? 1 + fsx_rand(4095) : 0);
			if (bad || off + len >= fsx_size) {
				/* Unaligned, or reaching the end: EINVAL, nothing changes. */
				if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, off, len) != -1 ||
				    errno != EINVAL)
					fsx_fail(op, "collapse: no EINVAL", off);
			} else {
				if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, off, len))
					fsx_fail(op, "collapse", off);
				memmove(fsx_model + off, fsx_model + off + len, fsx_size - off - len);
				fsx_size -= len;
				memset(fsx_model + fsx_size, 0, len);
			}
		} else if (kind < 82 && fsx_size && shift) {	/* insert range */
			off = fsx_rand((fsx_size - 1) / 4096 + 1) * 4096;
			len = (1 + fsx_rand(32)) * 4096;
			if (fsx_size + len > FSX_MAX) {
				/* At or past the end: EINVAL, nothing changes. */
				if (fallocate(fd, FALLOC_FL_INSERT_RANGE, (fsx_size + 4095) & ~4095UL,
					      4096) != -1 || errno != EINVAL)
					fsx_fail(op, "insert at the end: no EINVAL", fsx_size);
			} else {
				if (fallocate(fd, FALLOC_FL_INSERT_RANGE, off, len))
					fsx_fail(op, "insert", off);
				memmove(fsx_model + off + len, fsx_model + off, fsx_size - off);
				memset(fsx_model + off, 0, len);
				fsx_size += len;
			}
		} else {
			fsx_check(fd, op);
		}
	}
	if (fsync(fd))
		die("fsync");
	close(fd);
	fd = open(a[0], O_RDONLY);
	if (fd < 0)
		die("reopen");
	for (long i = 0; i < 20; i++)
		fsx_check(fd, ops + i);
	close(fd);
	printf("fsx: %ld ops, final size %zu\n", ops, fsx_size);
	if (a[3]) {
		int mfd = open(a[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (mfd < 0 || write(mfd, fsx_model, fsx_size) != (ssize_t)fsx_size || close(mfd))
			die("model");
	}
	return 0;
}

static int cmd_unlinkopen(char **a)
{
	static char buf[100000], got[100000];
	struct stat st;
	int fd = open(a[0], O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(i, 7);
	if (write(fd, buf, sizeof(buf)) != sizeof(buf))
		die("write");
	if (fsync(fd))
		die("fsync");
	if (unlink(a[0]))
		die("unlink");
	if (access(a[0], F_OK) == 0 || errno != ENOENT)
		fail("%s still there after unlink", a[0]);
	if (fstat(fd, &st))
		die("fstat");
	if (st.st_nlink != 0)
		fail("%s: nlink is not 0 after unlink", a[0]);
	/* drop the page cache of this file so the data comes from the file system again */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (pread(fd, got, sizeof(got), 0) != sizeof(got))
		die("pread after unlink");
	if (memcmp(buf, got, sizeof(buf)))
		fail("%s: data differs after unlink", a[0]);
	if (pwrite(fd, "more", 4, sizeof(buf)) != 4)
		die("pwrite after unlink");
	if (fsync(fd))
		die("fsync after unlink");
	close(fd);
	return 0;
}

static int cmd_getdents(char **a)
{
	size_t bsz = num(a[1]);
	char *buf = malloc(bsz);
	long count = 0;
	int fd = open(a[0], O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		die("open");
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, bsz);

		if (n < 0)
			die("getdents64");
		if (!n)
			break;
		for (long off = 0; off < n;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);

			count++;
			off += reclen;
		}
	}
	printf("%ld\n", count);
	close(fd);
	return 0;
}

/* Prints errno=<NAME> and exits 1 on failure; 0 and nothing printed on success. */
static int expect_ok(long ret)
{
	if (ret < 0) {
		printf("errno=%s\n", ename(errno));
		return 1;
	}
	return 0;
}

/* ---- manifest ----------------------------------------------------------------------------- */

/* A fast 64-bit hash of a file's contents (not cryptographic; finds corruption). */
static int hash_fd(int fd, unsigned long long *out)
{
	static unsigned char *buf;
	const size_t bsz = 1 << 20;
	unsigned long long h = 0x9e3779b97f4a7c15ULL, total = 0;
	ssize_t r;

	if (!buf)
		buf = malloc(bsz);
	while ((r = read(fd, buf, bsz)) > 0) {
		size_t i = 0;

		for (; i + 8 <= (size_t)r; i += 8) {
			unsigned long long w;

			memcpy(&w, buf + i, 8);
			h ^= w;
			h = (h << 29 | h >> 35) * 0xff51afd7ed558ccdULL;
		}
		for (; i < (size_t)r; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
		total += r;
	}
	if (r < 0)
		return -1;
	h ^= total;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	*out = h;
	return 0;
}

struct link_seen {
	dev_t dev;
	ino_t ino;
	char *path;
};
static struct link_seen *links;
static size_t nlinks, maxlinks;

static const char *first_link(const struct stat *st, const char *path)
{
	for (size_t i = 0; i < nlinks; i++)
		if (links[i].dev == st->st_dev && links[i].ino == st->st_ino)
			return links[i].path;
	if (nlinks == maxlinks) {
		maxlinks = maxlinks ? 2 * maxlinks : 256;
		links = realloc(links, maxlinks * sizeof(*links));
	}
	links[nlinks++] = (struct link_seen){ st->st_dev, st->st_ino, strdup(path) };
	return path;
}

static int strptrcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void put_escaped(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch <= ' ' || ch >= 127 || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

static int tree_errors;

static void tree_entry(const char *full, const char *rel)
{
	struct stat st;
	char buf[65536];
	ssize_t len;

	if (lstat(full, &st)) {
		printf("%s lstat-error %s\n", rel, ename(errno));
		tree_errors++;
		return;
	}
	put_escaped(rel, strlen(rel));
	printf(" %c %04o %u:%u", S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' :
	       S_ISLNK(st.st_mode) ? 'l' : S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' :
	       S_ISFIFO(st.st_mode) ? 'p' : S_ISSOCK(st.st_mode) ? 's' : '?',
	       (unsigned int)(st.st_mode & 07777), st.st_uid, st.st_gid);
	if (!S_ISDIR(st.st_mode))
		printf(" size=%lld", (long long)st.st_size);
	printf(" mtime=%lld.%09ld nlink=%lu", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
	       (unsigned long)st.st_nlink);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		printf(" link=");
		const char *f = first_link(&st, rel);

		put_escaped(f, strlen(f));
	}
	if (S_ISLNK(st.st_mode)) {
		len = readlink(full, buf, sizeof(buf));
		if (len < 0) {
			printf(" readlink-error=%s", ename(errno));
			tree_errors++;
		} else {
			printf(" target=");
			put_escaped(buf, len);
		}
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		printf(" rdev=%u:%u", major(st.st_rdev), minor(st.st_rdev));
	} else if (S_ISREG(st.st_mode)) {
		unsigned long long h;
		int fd = open(full, O_RDONLY | O_NOFOLLOW);

		if (fd < 0 || hash_fd(fd, &h)) {
			printf(" read-error=%s", ename(errno));
			tree_errors++;
		} else {
			printf(" hash=%016llx", h);
		}
		if (fd >= 0)
			close(fd);
	}
	len = llistxattr(full, buf, sizeof(buf));
	if (len < 0 && errno != EOPNOTSUPP) {
		printf(" listxattr-error=%s", ename(errno));
		tree_errors++;
	} else if (len > 0) {
		char *names[1024];
		size_t nn = 0;

		for (ssize_t off = 0; off < len && nn < 1024; off += strlen(buf + off) + 1)
			names[nn++] = buf + off;
		qsort(names, nn, sizeof(*names), strptrcmp);
		for (size_t i = 0; i < nn; i++) {
			char val[4096];
			ssize_t vl = lgetxattr(full, names[i], val, sizeof(val));

			printf(" xattr:%s=", names[i]);
			if (vl < 0) {
				printf("error-%s", ename(errno));
				tree_errors++;
			} else {
				put_escaped(val, vl);
			}
		}
	}
	putchar('\n');
	if (S_ISDIR(st.st_mode)) {
		struct dirent **ents;
		int n = scandir(full, &ents, NULL, alphasort);

		if (n < 0) {
			printf("%s scandir-error %s\n", rel, ename(errno));
			tree_errors++;
			return;
		}
		for (int i = 0; i < n; i++) {
			const char *name = ents[i]->d_name;

			if (strcmp(name, ".") && strcmp(name, "..")) {
				char *f, *r;

				if (asprintf(&f, "%s/%s", full, name) < 0 ||
				    asprintf(&r, "%s/%s", rel, name) < 0)
					die("asprintf");
				tree_entry(f, r);
				free(f);
				free(r);
			}
			free(ents[i]);
		}
		free(ents);
	}
}

static int cmd_tree(const char *dir)
{
	tree_entry(dir, ".");
	fflush(stdout);
	if (tree_errors)
		fprintf(stderr, "bento-t: tree %s: %d errors\n", dir, tree_errors);
	return tree_errors ? 1 : 0;
}

/* ---- errors ------------------------------------------------------------------------------- */

static int cmd_fill(const char *path, unsigned long long max)
{
	const size_t bsz = 1 << 20;
	unsigned char *buf = malloc(bsz);
	unsigned long long done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), werr = 0, ferr = 0, cerr = 0;

	if (fd < 0)
		die("open");
	while (done < max) {
		ssize_t r;

		for (size_t i = 0; i < bsz; i++)
			buf[i] = pat(done + i, 99);
		r = write(fd, buf, bsz);
		if (r < 0) {
			werr = errno;
			break;
		}
		done += r;	/* after a short write, the next write says why */
	}
	if (fsync(fd))
		ferr = errno;
	if (close(fd))
		cerr = errno;
	printf("write=%s fsync=%s close=%s bytes=%llu\n", werr ? ename(werr) : "ok",
	       ferr ? ename(ferr) : "ok", cerr ? ename(cerr) : "ok", done);
	return 0;
}

static int cmd_ioerr(const char *what, const char *path)
{
	static unsigned char buf[65536];
	struct stat st;
	int fd;

	if (!strcmp(what, "stat"))
		return expect_err(stat(path, &st)) ? 1 : 0;
	fd = open(path, !strcmp(what, "read") ? O_RDONLY : O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return expect_err(fd) ? 1 : 0;
	if (!strcmp(what, "read")) {
		ssize_t r;

		while ((r = read(fd, buf, sizeof(buf))) > 0)
			;
		return expect_err(r) ? 1 : 0;
	}
	memset(buf, 0x5a, sizeof(buf));
	if (write(fd, buf, sizeof(buf)) < 0)
		return expect_err(-1) ? 1 : 0;
	return expect_err(fsync(fd)) ? 1 : 0;
}

/* ---- churn: a checked workload for live upgrades ------------------------------------------- */

#define CHURN_SLOTS	8
#define CHURN_MAXSZ	(48 << 10)
#define CHURN_SLOW_NS	1000000LL	/* calls slower than 1 ms are logged with their times */
#define CHURN_MAXSLOW	200000

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct churn {
	const char *dir;
	unsigned long long calls, fails, checked;
	long long max_ns;
	long long *slow;	/* pairs: start, duration */
	unsigned int nslow;
	unsigned char *buf, *rbuf;
};

/* Every call of the workload goes through here: timed; a failure is counted and shown. */
static long churn_done(struct churn *c, long long t0, long ret, const char *what, const char *path)
{
	long long d = mono_ns() - t0;

	c->calls++;
	if (d > c->max_ns)
		c->max_ns = d;
	if (d >= CHURN_SLOW_NS && c->nslow < CHURN_MAXSLOW) {
		c->slow[2 * c->nslow] = t0;
		c->slow[2 * c->nslow + 1] = d;
		c->nslow++;
	}
	if (ret < 0) {
		c->fails++;
		fprintf(stderr, "bento-t churn: %s %s: %s\n", what, path, ename(errno));
	}
	return ret;
}
#define CALL(c, what, path, expr) ({ long long __t0 = mono_ns(); churn_done(c, __t0, (long)(expr), what, path); })

static void churn_fill(unsigned char *b, size_t len, unsigned long seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pat(i, seed);
}

/*
 * churn DIR STOPFILE OUT: until STOPFILE exists, in DIR (its own): write a new file (sometimes
 * fsync it), rename it over one of 8 slots, read a slot back and compare with what was last
 * renamed there, list the directory, sometimes unlink a slot or make and remove a directory.
 * (CHURN_FSYNC=N: fsync every Nth new file, default 4, 0 never.)
 * Every call is checked and timed; OUT gets "calls N fails N checked N max_us N" and then the
 * calls slower than 1 ms ("start_ns duration_ns"). Exit 1 on any failed call or wrong data.
 */
static int cmd_churn(const char *dir, const char *stop, const char *out)
{
	struct churn c = { .dir = dir };
	unsigned long seeds[CHURN_SLOTS] = { 0 };
	size_t sizes[CHURN_SLOTS] = { 0 };
	char tmp[4096], slot[4096], sub[4096];
	unsigned long gen = 0, rnd = (unsigned long)getpid() * 2654435761UL;
	const char *fs_env = getenv("CHURN_FSYNC");
	unsigned long fsync_every = fs_env ? strtoul(fs_env, NULL, 0) : 4;
	unsigned int i;
	FILE *f;

	c.slow = malloc(sizeof(long long) * 2 * CHURN_MAXSLOW);
	c.buf = malloc(CHURN_MAXSZ);
	c.rbuf = malloc(CHURN_MAXSZ + 1);
	if (!c.slow || !c.buf || !c.rbuf)
		die("malloc");
	if (mkdir(dir, 0755) && errno != EEXIST)
		die("mkdir");
	snprintf(tmp, sizeof(tmp), "%s/new", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	while (access(stop, F_OK)) {
		unsigned int k = gen % CHURN_SLOTS, r;
		size_t size;
		int fd;

		rnd = rnd * 6364136223846793005UL + 1442695040888963407UL;
		gen++;
		size = 1 + (rnd >> 20) % CHURN_MAXSZ;
		churn_fill(c.buf, size, rnd);
		/* write a new file, rename it over slot k */
		fd = CALL(&c, "create", tmp, open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0644));
		if (fd >= 0) {
			long w = CALL(&c, "write", tmp, write(fd, c.buf, size));

			if (w >= 0 && (size_t)w != size) {
				c.fails++;
				fprintf(stderr, "bento-t churn: short write %ld of %zu\n", w, size);
			}
			if (fsync_every && gen % fsync_every == 0)
				CALL(&c, "fsync", tmp, fsync(fd));
			CALL(&c, "close", tmp, close(fd));
			snprintf(slot, sizeof(slot), "%s/f%u", dir, k);
			if (CALL(&c, "rename", slot, rename(tmp, slot)) == 0) {
				seeds[k] = rnd;
				sizes[k] = size;
			}
		}
		/* read a slot back */
		r = (rnd >> 40) % CHURN_SLOTS;
		snprintf(slot, sizeof(slot), "%s/f%u", dir, r);
		fd = CALL(&c, "open", slot, sizes[r] ? open(slot, O_RDONLY) : 0);
		if (sizes[r] && fd >= 0) {
			long got = 0, n;

			do {
				n = CALL(&c, "read", slot, read(fd, c.rbuf + got, CHURN_MAXSZ + 1 - got));
				if (n > 0)
					got += n;
			} while (n > 0);
			CALL(&c, "close", slot, close(fd));
			churn_fill(c.buf, sizes[r], seeds[r]);
			if ((size_t)got != sizes[r] || memcmp(c.buf, c.rbuf, sizes[r])) {
				c.fails++;
				fprintf(stderr, "bento-t churn: %s: %ld bytes, want %zu, or other data\n",
					slot, got, sizes[r]);
			} else {
				c.checked++;
			}
		}
		/* list the directory every 8th round: every slot we wrote is there */
		if (gen % 8 == 0) {
			DIR *d;
			struct dirent *e;
			unsigned int seen = 0, want = 0;

			for (i = 0; i < CHURN_SLOTS; i++)
				want += sizes[i] != 0;
			d = (DIR *)CALL(&c, "opendir", dir, (long)(opendir(dir) ?: (void *)-1L));
			if (d != (void *)-1L) {
				while ((e = readdir(d)))
					seen += e->d_name[0] == 'f';
				closedir(d);
				if (seen != want) {
					c.fails++;
					fprintf(stderr, "bento-t churn: %s lists %u slots, want %u\n", dir,
						seen, want);
				}
			}
		}
		/* now and then: unlink a slot, make and remove a directory with an xattr */
		if (gen % 16 == 5 && sizes[(k + 3) % CHURN_SLOTS]) {
			snprintf(slot, sizeof(slot), "%s/f%u", dir, (k + 3) % CHURN_SLOTS);
			if (CALL(&c, "unlink", slot, unlink(slot)) == 0)
				sizes[(k + 3) % CHURN_SLOTS] = 0;
		}
		if (gen % 16 == 9) {
			CALL(&c, "mkdir", sub, mkdir(sub, 0700));
			CALL(&c, "setxattr", sub, setxattr(sub, "user.k", "v", 1, 0));
			CALL(&c, "rmdir", sub, rmdir(sub));
		}
	}
	f = fopen(out, "w");
	if (!f)
		die("fopen");
	fprintf(f, "calls %llu fails %llu checked %llu max_us %lld\n", c.calls, c.fails, c.checked,
		c.max_ns / 1000);
	for (i = 0; i < c.nslow; i++)
		fprintf(f, "%lld %lld\n", c.slow[2 * i], c.slow[2 * i + 1]);
	fclose(f);
	return c.fails ? 1 : 0;
}

/* insmod PATH: finit_module; prints "start_ns end_ns" (CLOCK_MONOTONIC), or errno= on failure */
static int cmd_insmod(const char *path)
{
	long long t0, t1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long ret;

	if (fd < 0)
		die("open");
	t0 = mono_ns();
	ret = syscall(SYS_finit_module, fd, "", 0);
	t1 = mono_ns();
	close(fd);
	if (ret < 0) {
		printf("errno=%s\n", ename(errno));
		return 1;
	}
	printf("%lld %lld\n", t0, t1);
	return 0;
}

/*
 * oploop statfs|getxattr|create PATH SECS: repeat one cheap call into the file system for SECS
 * seconds and print "ops N secs S": statfs(PATH); getxattr(PATH, "user.k") (set first);
 * create: open(PATH/oploop, O_CREAT) + close + unlink. Exit 1 on any failure.
 */
static int cmd_oploop(const char *what, const char *path, double secs)
{
	long long end = mono_ns() + (long long)(secs * 1e9), t0 = mono_ns(), ops = 0;
	char name[4096], val[16];
	struct statfs st;

	snprintf(name, sizeof(name), "%s/oploop", path);
	if (!strcmp(what, "getxattr") && setxattr(path, "user.k", "v", 1, 0))
		die("setxattr");
	while (ops % 64 || mono_ns() < end) {
		if (!strcmp(what, "statfs")) {
			if (statfs(path, &st))
				die("statfs");
		} else if (!strcmp(what, "getxattr")) {
			if (getxattr(path, "user.k", val, sizeof(val)) != 1)
				die("getxattr");
		} else if (!strcmp(what, "create")) {
			int fd = open(name, O_CREAT | O_WRONLY, 0644);

			if (fd < 0)
				die("create");
			close(fd);
			if (unlink(name))
				die("unlink");
		} else {
			fail("oploop: unknown call %s", what);
		}
		ops++;
	}
	printf("ops %lld secs %.3f\n", ops, (mono_ns() - t0) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	char **a = argv + 2;
	int n = argc - 2;

	if (!strcmp(c, "rename2") && n == 3) {
		unsigned int flags = 0;

		if (!strcmp(a[0], "noreplace"))
			flags = RENAME_NOREPLACE;
		else if (!strcmp(a[0], "exchange"))
			flags = RENAME_EXCHANGE;
		else if (!strcmp(a[0], "whiteout"))
			flags = RENAME_WHITEOUT;
		if (syscall(SYS_renameat2, AT_FDCWD, a[1], AT_FDCWD, a[2], flags)) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		return 0;
	}
	if (!strcmp(c, "setx") && n >= 3) {
		int flags = n > 3 ? (!strcmp(a[3], "create") ? XATTR_CREATE : XATTR_REPLACE) : 0;

		if (setxattr(a[0], a[1], a[2], strlen(a[2]), flags)) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		return 0;
	}
	if (!strcmp(c, "getx") && n == 2) {
		char buf[65536];
		ssize_t r = getxattr(a[0], a[1], buf, sizeof(buf));

		if (r < 0) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		printf("%.*s\n", (int)r, buf);
		return 0;
	}
	if (!strcmp(c, "btime") && n == 1) {
		struct statx st;

		if (statx(AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, STATX_BTIME | STATX_MTIME, &st)) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		if (!(st.stx_mask & STATX_BTIME)) {
			printf("no btime\n");
			return 1;
		}
		printf("%lld %lld\n", st.stx_btime.tv_sec * 1000000000LL + st.stx_btime.tv_nsec,
		       st.stx_mtime.tv_sec * 1000000000LL + st.stx_mtime.tv_nsec);
		return 0;
	}
	if (!strcmp(c, "sizex") && n == 2) {
		ssize_t r = getxattr(a[0], a[1], NULL, 0);
		char small[1];

		if (r < 0)
			die("getxattr");
		if (r > 1 && (getxattr(a[0], a[1], small, 1) >= 0 || errno != ERANGE))
			fail("%s: no ERANGE for a short buffer", a[0]);
		printf("%zd\n", r);
		return 0;
	}
	if (!strcmp(c, "listx") && n == 1) {
		char buf[65536];
		ssize_t r = listxattr(a[0], buf, sizeof(buf));

		if (r < 0)
			die("listxattr");
		if (listxattr(a[0], NULL, 0) != r)
			fail("%s: listxattr size 0 disagrees", a[0]);
		for (ssize_t off = 0; off < r; off += strlen(buf + off) + 1)
			printf("%s\n", buf + off);
		return 0;
	}
	if (!strcmp(c, "rmx") && n == 2) {
		if (removexattr(a[0], a[1])) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		return 0;
	}
	if (!strcmp(c, "pwrite") && n == 4)
		return cmd_pwrite(a, 0, 0);
	if (!strcmp(c, "pcheck") && n == 4)
		return cmd_pwrite(a, 1, 0);
	if (!strcmp(c, "zcheck") && n == 3)
		return cmd_pwrite(a, 1, 1);
	if (!strcmp(c, "mmapw") && n == 3)
		return cmd_mmapw(a);
	if (!strcmp(c, "mmapr") && n == 4)
		return cmd_mmapr(a);
	if (!strcmp(c, "fsx") && (n == 3 || n == 4))
		return cmd_fsx(a);
	if (!strcmp(c, "tree") && n == 1)
		return cmd_tree(a[0]);
	if (!strcmp(c, "hash") && n == 1) {
		int fd = open(a[0], O_RDONLY);
		unsigned long long h;

		if (fd < 0)
			die("open");
		if (hash_fd(fd, &h))
			die("read");
		printf("%016llx\n", h);
		return 0;
	}
	if (!strcmp(c, "mount") && (n == 4 || n == 5)) {
		unsigned long flags = n == 5 && !strcmp(a[4], "ro") ? MS_RDONLY : 0;

		return expect_ok(mount(a[0], a[1], a[2], flags, a[3][0] ? a[3] : NULL));
	}
	if (!strcmp(c, "rmmod") && n == 1)
		return expect_ok(syscall(SYS_delete_module, a[0], O_NONBLOCK));
	if (!strcmp(c, "fsync") && n == 1) {
		int fd = open(a[0], O_RDONLY);

		if (fd < 0)
			die("open");
		if (fsync(fd))
			die("fsync");
		close(fd);
		return 0;
	}
	if (!strcmp(c, "now") && n == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld.%06ld\n", (long long)ts.tv_sec, ts.tv_nsec / 1000);
		return 0;
	}
	if (!strcmp(c, "churn") && n == 3)
		return cmd_churn(a[0], a[1], a[2]);
	if (!strcmp(c, "oploop") && n == 3)
		return cmd_oploop(a[0], a[1], atof(a[2]));
	if (!strcmp(c, "insmod") && n == 1)
		return cmd_insmod(a[0]);
	if (!strcmp(c, "fill") && n == 2)
		return cmd_fill(a[0], num(a[1]) << 20);
	if (!strcmp(c, "ioerr") && n == 2)
		return cmd_ioerr(a[0], a[1]);
	if (!strcmp(c, "mmaptail") && n == 2)
		return cmd_mmaptail(a);
	if (!strcmp(c, "unlinkopen") && n == 1)
		return cmd_unlinkopen(a);
	if (!strcmp(c, "getdents") && n == 2)
		return cmd_getdents(a);
	if (!strcmp(c, "utimens") && n == 3) {
		struct timespec ts[2] = { { .tv_sec = num(a[1]), .tv_nsec = 123456789 },
					  { .tv_sec = num(a[2]), .tv_nsec = 987654321 } };

		if (utimensat(AT_FDCWD, a[0], ts, 0))
			die("utimensat");
		return 0;
	}
	if ((!strcmp(c, "punch") && n == 3) || (!strcmp(c, "falloc") && n >= 3)) {
		int mode = !strcmp(c, "punch") ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
			   (n > 3 ? FALLOC_FL_KEEP_SIZE : 0);
		int fd = open(a[0], O_RDWR | O_CREAT, 0644);

		if (fd < 0)
			die("open");
		if (fallocate(fd, mode, num(a[1]), num(a[2])))
			die("fallocate");
		close(fd);
		return 0;
	}
	if ((!strcmp(c, "zero") && (n == 3 || (n == 4 && !strcmp(a[3], "size")))) ||
	    (!strcmp(c, "collapse") && n == 3) || (!strcmp(c, "insert") && n == 3)) {
		int mode = !strcmp(c, "collapse") ? FALLOC_FL_COLLAPSE_RANGE :
			   !strcmp(c, "insert") ? FALLOC_FL_INSERT_RANGE :
			   n == 4 ? FALLOC_FL_ZERO_RANGE :
			   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		int fd = open(a[0], O_RDWR);

		if (fd < 0)
			die("open");
		if (fallocate(fd, mode, num(a[1]), num(a[2]))) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		close(fd);
		return 0;
	}
	if (!strcmp(c, "fsyncw") && n == 1) {
		int fd = open(a[0], O_RDWR | O_CREAT, 0644);

		if (fd < 0)
			die("open");
		if (write(fd, "x", 1) != 1)
			die("write");
		return expect_err(fsync(fd));
	}
	if (!strcmp(c, "readerr") && n == 1) {
		char buf[16];
		int fd = open(a[0], O_RDONLY);

		if (fd < 0)
			die("open");
		return expect_err(read(fd, buf, sizeof(buf)));
	}
	if (!strcmp(c, "fstype") && n == 1) {
		struct statfs st;

		if (statfs(a[0], &st))
			die("statfs");
		printf("%lx\n", (unsigned long)st.f_type);
		return 0;
	}
	if (!strcmp(c, "openx") && n == 1) {
		int fd = open(a[0], O_RDWR | O_CREAT | O_EXCL, 0600);

		if (fd < 0) {
			printf("errno=%s\n", ename(errno));
			return 1;
		}
		close(fd);
		return 0;
	}
	if (!strcmp(c, "trunc") && n == 2) {
		if (truncate(a[0], num(a[1])))
			die("truncate");
		return 0;
	}
	if (!strcmp(c, "sizeof") && n == 1) {
		struct stat st;

		if (stat(a[0], &st))
			die("stat");
		printf("%lld\n", (long long)st.st_size);
		return 0;
	}
	if (!strcmp(c, "asuser") && n >= 3) {
		if (setgroups(0, NULL) || setgid(num(a[1])) || setuid(num(a[0])))
			die("setuid");
		execvp(a[2], a + 2);
		die("exec");
	}
	fprintf(stderr, "bento-t: bad command (see the source for usage)\n");
	return 2;
}

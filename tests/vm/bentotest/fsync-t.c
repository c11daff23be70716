// SPDX-License-Identifier: GPL-2.0-only
/*
 * fsync-t: the fsync workloads of the VM tests (static, no dependencies).
 *
 *   setup DIR SEED ACKDEV    make DIR and its initial files (f0..f5: empty, inline-sized, 64 KiB,
 *                            300 KiB, 5 and 6 MiB, the last two past the inode's direct block
 *                            addresses), sync(2), then reset the acknowledgement record on the
 *                            raw disk ACKDEV to "operation 0 durable"
 *   work DIR SEED ACKDEV     the power-cut workload (tests/vm/powercut.sh): random operations
 *                            on the files in DIR, drawn from SEED, until the power is cut:
 *                              append + fsync, 1-4 overwrites + fsync or fdatasync, a buffered
 *                              write (no sync), truncate + fsync, create a new file + write +
 *                              fsync of the file, rename (to a new name or over a file) + fsync
 *                              of DIR, unlink + fsync of DIR, syncfs
 *                            Once a durable one returned, its number goes to ACKDEV (O_DIRECT
 *                            write + fdatasync, two alternating 4 KiB slots) before the next
 *                            operation begins. With FSYNC_T_PROGRESS=FILE in the environment,
 *                            the number of the last operation done is kept in FILE (so a
 *                            watcher can tell a hang from progress)
 *   check DIR SEED ACKDEV    after the power cut and the mount that recovered DIR: replays the
 *                            workload of SEED (no I/O) up to the last acknowledged operation L
 *                            and the one in flight M (the first durable one after L) and checks
 *                            DIR against what was promised:
 *                              - every name is bound as it was when its binding was last made
 *                                durable (a directory fsync or syncfs, or the fsync of a new
 *                                file not renamed since), or as a later operation up to M left
 *                                it; no other names; nothing lost that was durably named and
 *                                not removed by operation M;
 *                              - the size of a file is one it had since its last durable
 *                                fsync/fdatasync/syncfs (up to M), and each byte is one it held
 *                                since then (never garbage, never older than the promise);
 *                            prints what it found per name; failures start with "FAIL" and
 *                            name the file, the offset and the bytes; exit 1 if any
 *   bench FILE append|overwrite N PREALLOC_MIB
 *                            N 4 KiB writes each followed by fsync (append: at the end of a new
 *                            file; overwrite: at random aligned offsets in a file of
 *                            PREALLOC_MIB MiB written and fsync'd first, not timed); prints
 *                            "fsync-bench phase=... ops=N secs=S ops_s=R fsync_p50_us=..
 *                            fsync_p99_us=.. fsync_max_us=.. fsync_mean_us=.. hash=H" (H: the
 *                            content hash of `bento-t hash`, to compare after a remount); reads
 *                            the file back and checks it against what was written
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef unsigned long long u64;

#define MAXOBJ 8192 /* objects (files) in one run */
#define MAXNAMES 16384
#define MAXLIVE 16
#define MINLIVE 3
#define MAXSIZE (8LL << 20)
#define MAXOPS 10000000L
#define ACK_MAGIC 0x3130304b43414350ULL /* "PCACK001" */
#define NINIT 6

static const long long init_size[NINIT] = { 0, 3000, 64 << 10, 300 << 10, 5 << 20, 6 << 20 };

static void die(const char *what)
{
	fprintf(stderr, "fsync-t: %s: %s\n", what, strerror(errno));
	exit(2);
}

static u64 mix(u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The bytes a write puts at file offset off: they depend on the write (tag) and the offset. */
static void fill(unsigned char *buf, size_t len, u64 off, u64 tag)
{
	size_t i = 0;

	while (i < len) {
		u64 w = mix(((off + i) >> 3) ^ tag);
		unsigned int k = (off + i) & 7;

		for (; k < 8 && i < len; k++, i++)
			buf[i] = (unsigned char)(w >> (8 * k));
	}
}

/* ---- the workload model (shared by work and check) ---------------------------------------- */

enum { OP_APPEND, OP_OVERWRITE, OP_WRITE, OP_TRUNC, OP_CREATE, OP_RENAME, OP_UNLINK, OP_SYNC };
static const char *const op_name[] = {
	"append + fsync", "overwrite + fsync/fdatasync", "buffered write (no sync)",
	"truncate + fsync", "create + write + fsync of the file", "rename + fsync of the directory",
	"unlink + fsync of the directory", "syncfs",
};

struct snap {
	long op; /* the operation that made this version */
	long long size;
	/*
	 * The size before, when a write extended the file: the kernel grows i_size page by page
	 * as it copies, so writeback may catch any page boundary in between.
	 */
	long long from;
	unsigned char *data;
};

struct obj {
	long long size;
	int name; /* its name, -1 once removed */
	long created, death; /* operation numbers; death -1 while alive */
	int renamed;
	/* check only */
	long last_ack; /* pass 1: the last durable operation covering its data (-1: none) */
	int durably_named; /* some durable operation covered one of its names */
	unsigned char *buf; /* content now */
	long long cap;
	struct snap *snaps; /* the versions it may show: since last_ack, up to M */
	int nsnaps;
	int found; /* names whose content matched it */
	int seen; /* a name it may be under exists */
};

struct name {
	char s[24];
	int obj; /* bound to, or -1 */
	/* check only: the bindings it may show (-1: absent), and the last durable one */
	int *allowed;
	int nallowed;
	long durable_op;
};

struct write1 {
	long long off, len;
};

struct step {
	int kind, obj, from, to, replaced, datasync, nw;
	struct write1 w[4];
	long long newsize;
};

struct pc {
	u64 seed, rng;
	struct obj obj[MAXOBJ];
	int nobj;
	struct name name[MAXNAMES];
	int nname;
	int live[MAXLIVE + 1];
	int nlive;
	int profile;
};

static struct pc pc;

static u64 rnd(void)
{
	pc.rng += 0x9e3779b97f4a7c15ULL;
	return mix(pc.rng);
}

static u64 below(u64 n)
{
	return n ? rnd() % n : 0;
}

static int add_name(const char *s)
{
	struct name *n = &pc.name[pc.nname];

	if (pc.nname == MAXNAMES) {
		fprintf(stderr, "fsync-t: too many names\n");
		exit(2);
	}
	memset(n, 0, sizeof(*n));
	snprintf(n->s, sizeof(n->s), "%s", s);
	n->obj = -1;
	n->durable_op = -1;
	return pc.nname++;
}

static int add_obj(int name, long op)
{
	struct obj *o = &pc.obj[pc.nobj];

	if (pc.nobj == MAXOBJ) {
		fprintf(stderr, "fsync-t: too many files\n");
		exit(2);
	}
	memset(o, 0, sizeof(*o));
	o->name = name;
	o->created = op;
	o->death = -1;
	o->last_ack = -1;
	pc.name[name].obj = pc.nobj;
	pc.live[pc.nlive++] = pc.nobj;
	return pc.nobj++;
}

static void kill_obj(int o, long op)
{
	pc.obj[o].death = op;
	pc.obj[o].name = -1;
	for (int i = 0; i < pc.nlive; i++)
		if (pc.live[i] == o)
			pc.live[i] = pc.live[--pc.nlive];
}

static void pc_init(u64 seed)
{
	char s[8];

	memset(&pc, 0, sizeof(pc));
	pc.seed = seed;
	pc.rng = mix(seed ^ 0x5eed);
	pc.profile = (int)(seed % 3);
	for (int i = 0; i < NINIT; i++) {
		snprintf(s, sizeof(s), "f%d", i);
		pc.obj[add_obj(add_name(s), 0)].size = init_size[i];
	}
}

/* f4 and f5 stay (renamed perhaps) and keep past BIGMIN bytes: their blocks need index nodes */
#define BIGMIN (4LL << 20)
static int big(int obj)
{
	return obj == 4 || obj == 5;
}

static u64 tag_of(long op, int w)
{
	return mix(pc.seed * 0x100000001b3ULL + (u64)op * 8 + (u64)w);
}

/*
 * How often each operation comes, per mille, by profile (from the seed). Renames, unlinks and
 * syncfs commit checkpoints (so do fsyncs of files renamed, and of new files after a name went
 * away, until the next one): the rarer they are, the longer the chains of fsync records that
 * recovery replays.
 */
static const int weights[3][OP_SYNC + 1] = {
	/* append, overwrite, buffered, truncate, create, rename, unlink, syncfs */
	{ 320, 350, 120, 60, 100, 25, 15, 10 },	/* data: few checkpoints */
	{ 280, 300, 120, 60, 120, 60, 40, 20 },	/* mixed */
	{ 220, 220, 120, 60, 150, 110, 80, 40 },	/* names: many checkpoints */
};
static const char *const profile_name[] = { "data", "mixed", "names" };

/* Draws operation op; updates names and sizes (not contents). */
static void gen(long op, struct step *s)
{
	const int *w = weights[pc.profile];
	u64 r = below(1000);
	struct obj *o;

	memset(s, 0, sizeof(*s));
	s->replaced = -1;
	for (s->kind = 0; s->kind < OP_SYNC && r >= (u64)w[s->kind]; s->kind++)
		r -= w[s->kind];
	if (s->kind == OP_CREATE && pc.nlive >= MAXLIVE)
		s->kind = OP_OVERWRITE;
	if (s->kind == OP_UNLINK && pc.nlive <= MINLIVE)
		s->kind = OP_CREATE;
	s->obj = pc.live[below(pc.nlive)];
	o = &pc.obj[s->obj];
	if (s->kind == OP_UNLINK && big(s->obj))
		s->kind = OP_OVERWRITE;
	if (s->kind == OP_APPEND) {
		long long len = below(2) ? 4096 * (1 + below(4)) : 1 + below(16384);

		if (o->size + len > MAXSIZE) {
			s->kind = OP_TRUNC;
		} else {
			s->nw = 1;
			s->w[0].off = o->size;
			s->w[0].len = len;
			o->size += len;
		}
	}
	if (s->kind == OP_OVERWRITE || s->kind == OP_WRITE) {
		s->nw = s->kind == OP_WRITE ? 1 : 1 + below(4);
		s->datasync = below(2);
		for (int i = 0; i < s->nw; i++) {
			long long off = below(o->size + 1), len = 1 + below(32768);

			if (below(2)) {
				off &= ~4095LL;
				len = (len + 4095) & ~4095LL;
			}
			if (off + len > MAXSIZE)
				len = MAXSIZE - off;
			if (len <= 0)
				len = 1, off = 0;
			s->w[i].off = off;
			s->w[i].len = len;
			if (off + len > o->size)
				o->size = off + len;
		}
	}
	if (s->kind == OP_TRUNC) {
		u64 how = below(10);

		if (how == 0)
			s->newsize = below(4096);
		else if (how < 6)
			s->newsize = o->size - below(o->size / 4 + 1);
		else
			s->newsize = o->size + below(65536);
		if (s->newsize > MAXSIZE)
			s->newsize = MAXSIZE - below(65536);
		if (big(s->obj) && s->newsize < BIGMIN)
			s->newsize = BIGMIN + below(65536);
		o->size = s->newsize;
	}
	if (s->kind == OP_CREATE) {
		char nm[24];

		snprintf(nm, sizeof(nm), "n%ld", op);
		s->to = add_name(nm);
		s->obj = add_obj(s->to, op);
		s->nw = 1;
		s->w[0].len = below(3) ? 1 + below(3600) : 1 + below(65536);
		pc.obj[s->obj].size = s->w[0].len;
	}
	if (s->kind == OP_RENAME) {
		s->from = o->name;
		int t = pc.live[below(pc.nlive)];

		if (below(3) == 0 && pc.nlive > MINLIVE && t != s->obj && !big(t)) {
			s->replaced = t;
			s->to = pc.obj[t].name;
			kill_obj(t, op);
		} else {
			char nm[24];

			snprintf(nm, sizeof(nm), "r%ld", op);
			s->to = add_name(nm);
		}
		pc.name[s->from].obj = -1;
		pc.name[s->to].obj = s->obj;
		o->name = s->to;
		o->renamed = 1;
	}
	if (s->kind == OP_UNLINK) {
		s->from = o->name;
		pc.name[s->from].obj = -1;
		kill_obj(s->obj, op);
	}
}

static int durable_kind(int k)
{
	return k != OP_WRITE;
}

/* ---- acknowledgement record ---------------------------------------------------------------- */

struct ack {
	u64 magic, seed, op, check;
};

static void *ackbuf;

static void ack_write(int fd, long op, int slot)
{
	struct ack a = { ACK_MAGIC, pc.seed, (u64)op, 0 };

	a.check = mix(a.magic ^ mix(a.seed ^ mix(a.op)));
	memset(ackbuf, 0, 4096);
	memcpy(ackbuf, &a, sizeof(a));
	if (pwrite(fd, ackbuf, 4096, slot * 4096) != 4096)
		die("ack: pwrite (O_DIRECT)");
	if (fdatasync(fd))
		die("ack: fdatasync");
}

static int ack_open(const char *dev)
{
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0)
		die(dev);
	if (posix_memalign(&ackbuf, 4096, 4096))
		die("posix_memalign");
	return fd;
}

/* The last acknowledged operation, or -1 if there is no record of this seed. */
static long ack_read(int fd)
{
	long best = -1;

	for (int slot = 0; slot < 2; slot++) {
		struct ack a;

		if (pread(fd, ackbuf, 4096, slot * 4096) != 4096)
			die("ack: pread");
		memcpy(&a, ackbuf, sizeof(a));
		if (a.magic == ACK_MAGIC && a.seed == pc.seed &&
		    a.check == mix(a.magic ^ mix(a.seed ^ mix(a.op))) && (long)a.op > best)
			best = (long)a.op;
	}
	return best;
}

/* ---- setup and work ------------------------------------------------------------------------ */

static unsigned char *wbuf;

static void do_pwrite(int fd, const struct write1 *w, u64 tag, const char *what)
{
	fill(wbuf, w->len, w->off, tag);
	if (pwrite(fd, wbuf, w->len, w->off) != w->len)
		die(what);
}

static int cmd_setup(const char *dir, const char *ackdev)
{
	int ackfd = ack_open(ackdev);

	wbuf = malloc(MAXSIZE);
	if (!wbuf)
		die("malloc");
	if (mkdir(dir, 0755))
		die(dir);
	if (chdir(dir))
		die(dir);
	for (int i = 0; i < NINIT; i++) {
		struct write1 w = { 0, init_size[i] };
		int fd = open(pc.name[i].s, O_CREAT | O_EXCL | O_WRONLY, 0644);

		if (fd < 0)
			die(pc.name[i].s);
		if (w.len)
			do_pwrite(fd, &w, tag_of(0, i), "setup: pwrite");
		if (close(fd))
			die("close");
	}
	sync();
	ack_write(ackfd, 0, 0);
	ack_write(ackfd, 0, 1); /* both slots: no stale record of an older run */
	printf("# setup: %s: %d files, synced\n", dir, NINIT);
	return 0;
}

static int cmd_work(const char *dir, const char *ackdev)
{
	int ackfd = ack_open(ackdev), dfd, pfd = -1;
	const char *progress = getenv("FSYNC_T_PROGRESS");
	long counts[8] = { 0 };
	struct step s;

	wbuf = malloc(1 << 20);
	if (!wbuf)
		die("malloc");
	if (chdir(dir))
		die(dir);
	dfd = open(".", O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		die(dir);
	if (progress) {
		pfd = open(progress, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (pfd < 0)
			die(progress);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# work: %s, seed %llu (profile %s): running until the power is cut\n", dir,
	       pc.seed, profile_name[pc.profile]);
	for (long op = 1; op <= MAXOPS; op++) {
		char what[96];
		int fd = -1;

		gen(op, &s);
		snprintf(what, sizeof(what), "op %ld (%s) on %s", op, op_name[s.kind],
			 s.kind == OP_CREATE ? pc.name[s.to].s : s.kind == OP_SYNC ? "." :
			 s.kind == OP_RENAME || s.kind == OP_UNLINK ? pc.name[s.from].s :
			 pc.name[pc.obj[s.obj].name].s);
		switch (s.kind) {
		case OP_APPEND:
		case OP_OVERWRITE:
		case OP_WRITE:
		case OP_TRUNC:
		case OP_CREATE:
			fd = s.kind == OP_CREATE ?
				open(pc.name[s.to].s, O_CREAT | O_EXCL | O_WRONLY, 0644) :
				open(pc.name[pc.obj[s.obj].name].s, O_WRONLY);
			if (fd < 0)
				die(what);
			for (int i = 0; i < s.nw; i++)
				do_pwrite(fd, &s.w[i], tag_of(op, i), what);
			if (s.kind == OP_TRUNC && ftruncate(fd, s.newsize))
				die(what);
			if (s.kind != OP_WRITE && (s.datasync ? fdatasync(fd) : fsync(fd)))
				die(what);
			if (close(fd))
				die(what);
			break;
		case OP_RENAME:
			if (renameat(dfd, pc.name[s.from].s, dfd, pc.name[s.to].s) || fsync(dfd))
				die(what);
			break;
		case OP_UNLINK:
			if (unlinkat(dfd, pc.name[s.from].s, 0) || fsync(dfd))
				die(what);
			break;
		case OP_SYNC:
			if (syncfs(dfd))
				die(what);
			break;
		}
		counts[s.kind & 7]++;
		if (durable_kind(s.kind))
			ack_write(ackfd, op, op & 1);
		if (pfd >= 0) {
			char line[24];
			int len = snprintf(line, sizeof(line), "%20ld\n", op);

			if (pwrite(pfd, line, len, 0) != len)
				die(progress);
		}
		if (op % 250 == 0)
			printf("# work: op %ld acknowledged; %ld appends, %ld overwrites, %ld buffered, "
			       "%ld truncates, %ld creates, %ld renames, %ld unlinks, %ld syncfs; "
			       "%d files\n", op, counts[0], counts[1], counts[2], counts[3],
			       counts[4], counts[5], counts[6], counts[7], pc.nlive);
	}
	pause();
	return 0;
}

/* ---- check --------------------------------------------------------------------------------- */

static int failures;

#define FAIL(...) do { printf("FAIL: " __VA_ARGS__); putchar('\n'); failures++; } while (0)

static void push_snap(struct obj *o, long op, long long from)
{
	struct snap *sn;

	o->snaps = realloc(o->snaps, (o->nsnaps + 1) * sizeof(*o->snaps));
	if (!o->snaps)
		die("realloc");
	sn = &o->snaps[o->nsnaps++];
	sn->op = op;
	sn->size = o->size;
	sn->from = from < o->size ? from : o->size;
	sn->data = malloc(o->size ? o->size : 1);
	if (!sn->data)
		die("malloc");
	memcpy(sn->data, o->buf, o->size);
}

static void reset_snaps(struct obj *o, long op)
{
	for (int i = 0; i < o->nsnaps; i++)
		free(o->snaps[i].data);
	o->nsnaps = 0;
	push_snap(o, op, o->size);
}

/* A new version of o at op: keep it if it is at or after o's last promise. */
static void version(struct obj *o, long op, long long from)
{
	if (op >= o->last_ack)
		push_snap(o, op, from);
}

static void resize(struct obj *o, long long size)
{
	if (size > o->cap) {
		o->buf = realloc(o->buf, size);
		if (!o->buf)
			die("realloc");
		o->cap = size;
	}
	/* o->size holds the new size already (gen); zero what a shrink cut and an extension shows */
}

static void allow(int n, int binding)
{
	struct name *nm = &pc.name[n];

	for (int i = 0; i < nm->nallowed; i++)
		if (nm->allowed[i] == binding)
			return;
	nm->allowed = realloc(nm->allowed, (nm->nallowed + 1) * sizeof(int));
	if (!nm->allowed)
		die("realloc");
	nm->allowed[nm->nallowed++] = binding;
}

/* A durable operation op covers name n: it must show its binding now or a later one. */
static void name_durable(int n, long op)
{
	struct name *nm = &pc.name[n];

	nm->nallowed = 0;
	allow(n, nm->obj);
	nm->durable_op = op;
	if (nm->obj >= 0)
		pc.obj[nm->obj].durably_named = 1;
}

static void apply_writes(struct obj *o, const struct step *s, long op, long long oldsize)
{
	long long size = oldsize;

	for (int i = 0; i < s->nw; i++) {
		const struct write1 *w = &s->w[i];
		long long end = w->off + w->len, before = size;

		if (end > size) {
			resize(o, end);
			memset(o->buf + size, 0, end - size);
			size = end;
		}
		fill(o->buf + w->off, w->len, w->off, tag_of(op, i));
		/* each write is a version of its own */
		{
			long long final = o->size;

			o->size = size;
			version(o, op, before);
			o->size = final;
		}
	}
}

/*
 * Replays operations 1..m. Pass 1 (content == 0) only finds, for each file, the last durable
 * operation up to l that covers its data; pass 2 keeps the contents, the versions since then,
 * and which bindings each name may show.
 */
static void replay(long l, long m, int content, long *last_ack)
{
	struct step s;

	pc_init(pc.seed);
	for (int i = 0; i < NINIT; i++) {
		struct obj *o = &pc.obj[i];

		o->last_ack = content ? last_ack[i] : 0;
		if (content) {
			resize(o, o->size);
			if (o->size)
				fill(o->buf, o->size, 0, tag_of(0, i));
			version(o, 0, o->size);
			name_durable(o->name, 0);
		}
	}
	for (long op = 1; op <= m; op++) {
		long long oldsize = 0, sizes[MAXLIVE + 1];
		int acked, ids[MAXLIVE + 1], nlive = pc.nlive;
		struct obj *o;

		/* gen changes sizes: remember them first */
		for (int i = 0; i < nlive; i++) {
			ids[i] = pc.live[i];
			sizes[i] = pc.obj[ids[i]].size;
		}
		gen(op, &s);
		for (int i = 0; i < nlive; i++)
			if (ids[i] == s.obj)
				oldsize = sizes[i];
		o = &pc.obj[s.obj];
		if (s.kind == OP_CREATE) {
			o->last_ack = content ? last_ack[s.obj] : -1;
			oldsize = 0;
		}
		acked = op <= l && durable_kind(s.kind);
		if (content) {
			switch (s.kind) {
			case OP_CREATE:
				o->size = 0;
				version(o, op, 0); /* created, empty */
				o->size = s.w[0].len;
				/* fallthrough */
			case OP_APPEND:
			case OP_OVERWRITE:
			case OP_WRITE:
				apply_writes(o, &s, op, oldsize);
				break;
			case OP_TRUNC:
				resize(o, s.newsize);
				if (s.newsize > oldsize)
					memset(o->buf + oldsize, 0, s.newsize - oldsize);
				version(o, op, o->size);
				break;
			}
			if (s.kind == OP_CREATE)
				allow(s.to, s.obj);
			if (s.kind == OP_RENAME) {
				allow(s.from, -1);
				allow(s.to, s.obj);
			}
			if (s.kind == OP_UNLINK)
				allow(s.from, -1);
		}
		if (!acked)
			continue;
		switch (s.kind) {
		case OP_APPEND:
		case OP_OVERWRITE:
		case OP_TRUNC:
		case OP_CREATE:
			if (content) {
				if (op == o->last_ack)
					reset_snaps(o, op);
				/* a new file's name, by the fsync of the file (not fdatasync) */
				if (!o->renamed && o->created > 0 && !s.datasync)
					name_durable(o->name, op);
			} else {
				o->last_ack = op;
			}
			break;
		case OP_RENAME:
		case OP_UNLINK:
			if (content)
				for (int n = 0; n < pc.nname; n++)
					name_durable(n, op);
			break;
		case OP_SYNC:
			for (int i = 0; i < pc.nlive; i++) {
				struct obj *x = &pc.obj[pc.live[i]];

				if (!content)
					x->last_ack = op;
				else if (op == x->last_ack)
					reset_snaps(x, op);
			}
			if (content)
				for (int n = 0; n < pc.nname; n++)
					name_durable(n, op);
			break;
		}
	}
	if (!content)
		for (int i = 0; i < pc.nobj; i++)
			last_ack[i] = pc.obj[i].last_ack;
}

/*
 * Does content (size) fit o: a size o had since its promise, every byte one it held there?
 * Returns -1 if so, else the first offset that does not (or the size if no version had it).
 * *whole: the version equal to all of it, or -1.
 */
static long long fits(const struct obj *o, const unsigned char *c, long long size, int *whole)
{
	int size_ok = 0;

	*whole = -1;
	for (int i = 0; i < o->nsnaps; i++) {
		const struct snap *sn = &o->snaps[i];

		if (sn->size == size || (size > sn->from && size < sn->size && size % 4096 == 0))
			size_ok = 1;
		if (sn->size == size && !memcmp(sn->data, c, size))
			*whole = i;
	}
	if (!size_ok)
		return size;
	if (*whole >= 0)
		return -1;
	for (long long p = 0; p < size; p += 4096) {
		long long end = p + 4096 < size ? p + 4096 : size;
		int page_ok = 0;

		for (int i = 0; i < o->nsnaps && !page_ok; i++)
			page_ok = o->snaps[i].size >= end &&
				  !memcmp(o->snaps[i].data + p, c + p, end - p);
		if (page_ok)
			continue;
		for (long long x = p; x < end; x++) {
			int ok = 0;

			for (int i = 0; i < o->nsnaps && !ok; i++)
				ok = o->snaps[i].size > x && o->snaps[i].data[x] == c[x];
			if (!ok)
				return x;
		}
	}
	return -1;
}

static void hex(const char *label, const unsigned char *p, long long n)
{
	printf("#     %-34s", label);
	for (long long i = 0; i < n && i < 16; i++)
		printf(" %02x", p[i]);
	putchar('\n');
}

static void explain(const struct obj *o, const char *name, const unsigned char *c, long long size,
		    long long bad)
{
	int id = (int)(o - pc.obj);

	if (bad == size) {
		printf("#   %s as file #%d: size %lld is none it had since op %ld; sizes allowed:",
		       name, id, size, o->snaps[0].op);
		for (int i = 0; i < o->nsnaps; i++)
			printf(" %lld (op %ld)", o->snaps[i].size, o->snaps[i].op);
		putchar('\n');
		return;
	}
	printf("#   %s as file #%d: the byte at offset %lld (block %lld) is none it held since "
	       "op %ld (%d versions, sizes", name, id, bad, bad / 4096, o->snaps[0].op, o->nsnaps);
	for (int i = 0; i < o->nsnaps; i++)
		printf(" %lld", o->snaps[i].size);
	printf(")\n");
	hex("on disk:", c + bad, size - bad);
	for (int i = 0; i < o->nsnaps; i++) {
		char label[64];

		if (o->snaps[i].size <= bad)
			continue;
		snprintf(label, sizeof(label), "version of op %ld:", o->snaps[i].op);
		hex(label, o->snaps[i].data + bad, o->snaps[i].size - bad);
	}
	{
		int all_zero = 1;

		for (long long x = bad; x < size && x < bad + 4096; x++)
			all_zero &= c[x] == 0;
		if (all_zero)
			printf("#     (the disk shows zeroes there)\n");
	}
}

static unsigned char *read_all(const char *name, long long *size)
{
	struct stat st;
	unsigned char *b;
	int fd = open(name, O_RDONLY);
	long long done = 0;

	if (fd < 0 || fstat(fd, &st)) {
		FAIL("%s: open/stat: %s", name, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		FAIL("%s: not a regular file (mode %o)", name, st.st_mode);
		close(fd);
		return NULL;
	}
	b = malloc(st.st_size ? st.st_size : 1);
	if (!b)
		die("malloc");
	while (done < st.st_size) {
		ssize_t r = read(fd, b + done, st.st_size - done);

		if (r <= 0) {
			FAIL("%s: read at %lld: %s", name, done, r ? strerror(errno) : "end of file");
			free(b);
			close(fd);
			return NULL;
		}
		done += r;
	}
	close(fd);
	*size = st.st_size;
	return b;
}

static int cmd_check(const char *dir, const char *ackdev)
{
	int ackfd = ack_open(ackdev);
	long l = ack_read(ackfd), m;
	long *last_ack = calloc(MAXOBJ, sizeof(long));
	int *unique = calloc(MAXOBJ, sizeof(int));
	struct step s;
	DIR *d;
	struct dirent *e;
	int in_flight = -1;

	if (!last_ack || !unique)
		die("calloc");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (l < 0) {
		FAIL("%s: no acknowledgement record of seed %llu on %s", dir, pc.seed, ackdev);
		return 1;
	}
	/* the operation in flight: the first durable one after l */
	pc_init(pc.seed);
	for (m = 1; m <= MAXOPS; m++) {
		gen(m, &s);
		if (m > l && durable_kind(s.kind)) {
			in_flight = s.kind;
			break;
		}
	}
	printf("# check %s, seed %llu (profile %s): operation %ld acknowledged durable (and all "
	       "before it); operations up to %ld may have happened (%ld: %s)\n", dir, pc.seed,
	       profile_name[pc.profile], l, m, m, in_flight >= 0 ? op_name[in_flight] : "?");
	replay(l, m, 0, last_ack);
	replay(l, m, 1, last_ack);
	if (chdir(dir)) {
		FAIL("%s: %s", dir, strerror(errno));
		return 1;
	}
	/* names on disk that the workload never made */
	d = opendir(".");
	if (!d)
		die("opendir");
	while ((e = readdir(d))) {
		int known = 0;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		for (int n = 0; n < pc.nname && !known; n++)
			known = !strcmp(pc.name[n].s, e->d_name);
		if (!known)
			FAIL("%s/%s: a name the workload never made", dir, e->d_name);
	}
	closedir(d);
	for (int n = 0; n < pc.nname; n++) {
		struct name *nm = &pc.name[n];
		struct stat st;
		unsigned char *c;
		long long size = 0;
		int matches = 0, last = -1, absent_ok = 0, whole = -1;

		absent_ok = nm->durable_op < 0; /* never durable: it may not have been made */
		for (int i = 0; i < nm->nallowed; i++)
			absent_ok |= nm->allowed[i] < 0;
		if (lstat(nm->s, &st)) {
			if (errno != ENOENT)
				FAIL("%s/%s: lstat: %s", dir, nm->s, strerror(errno));
			else if (!absent_ok)
				FAIL("%s/%s: missing; its name was durable since op %ld (file #%d)",
				     dir, nm->s, nm->durable_op, nm->allowed[0]);
			continue;
		}
		c = read_all(nm->s, &size);
		if (!c)
			continue;
		for (int i = 0; i < nm->nallowed; i++) {
			int w;
			struct obj *o;

			if (nm->allowed[i] < 0)
				continue;
			o = &pc.obj[nm->allowed[i]];
			o->seen = 1;
			if (fits(o, c, size, &w) < 0) {
				matches++;
				last = nm->allowed[i];
				whole = w;
				o->found++;
			}
		}
		if (!matches) {
			FAIL("%s/%s: size %lld: not a content the file could have (durable since op "
			     "%ld)", dir, nm->s, size, nm->durable_op);
			for (int i = 0; i < nm->nallowed; i++)
				if (nm->allowed[i] >= 0)
					explain(&pc.obj[nm->allowed[i]], nm->s, c, size,
						fits(&pc.obj[nm->allowed[i]], c, size, &whole));
			if (absent_ok)
				printf("#   (or it should not exist)\n");
		} else if (matches == 1) {
			struct obj *o = &pc.obj[last];

			if (unique[last])
				FAIL("%s/%s: file #%d shows under two names (also %s)", dir, nm->s,
				     last, pc.name[unique[last] - 1].s);
			unique[last] = n + 1;
			if (whole >= 0)
				printf("# %-8s file #%d, %lld bytes: its version of op %ld (promised: op "
				       "%ld; newest: op %ld)\n", nm->s, last, size, o->snaps[whole].op,
				       o->snaps[0].op, o->snaps[o->nsnaps - 1].op);
			else
				printf("# %-8s file #%d, %lld bytes: blocks of its versions of ops %ld.."
				       "%ld\n", nm->s, last, size, o->snaps[0].op,
				       o->snaps[o->nsnaps - 1].op);
		} else {
			printf("# %-8s %lld bytes: fits %d of the files it may be\n", nm->s, size,
			       matches);
		}
		free(c);
	}
	for (int i = 0; i < pc.nobj; i++) {
		struct obj *o = &pc.obj[i];

		if (o->durably_named && o->death < 0 && !o->seen)
			FAIL("%s: file #%d (created by op %ld, last named %s) is lost: it was "
			     "durably named and not removed", dir, i, o->created,
			     o->name >= 0 ? pc.name[o->name].s : "?");
	}
	if (failures)
		printf("# check %s: %d failures\n", dir, failures);
	else
		printf("# check %s: all %d names and %d files as promised\n", dir, pc.nname, pc.nobj);
	return failures ? 1 : 0;
}

/* ---- bench --------------------------------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static u64 hash_fd(int fd)
{
	/* the hash of bento-t's tree and hash commands */
	static unsigned char buf[1 << 20];
	u64 h = 0x9e3779b97f4a7c15ULL, total = 0;
	ssize_t r;

	if (lseek(fd, 0, SEEK_SET))
		die("lseek");
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		size_t i = 0;

		for (; i + 8 <= (size_t)r; i += 8) {
			u64 w;

			memcpy(&w, buf + i, 8);
			h ^= w;
			h = (h << 29 | h >> 35) * 0xff51afd7ed558ccdULL;
		}
		for (; i < (size_t)r; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
		total += r;
	}
	if (r < 0)
		die("read");
	h ^= total;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int cmd_bench(const char *file, const char *phase, long n, long long prealloc_mib)
{
	int append = !strcmp(phase, "append"), fd;
	long long blocks = append ? n : prealloc_mib * 256;
	long long *off = malloc(n * sizeof(*off));
	double *lat = malloc(n * sizeof(*lat)), t0, t1, sum = 0;
	unsigned char *buf = malloc(1 << 20), *want = malloc(blocks * 4096LL), *got;

	if (!append && strcmp(phase, "overwrite"))
		return fprintf(stderr, "fsync-t: bench: phase append or overwrite\n"), 2;
	if (!off || !lat || !buf || !want || n <= 0 || blocks <= 0)
		die("bench: malloc");
	pc.rng = 42;
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0)
		die(file);
	memset(want, 0, blocks * 4096LL);
	if (!append) {
		for (long long b = 0; b < blocks; b += 256) {
			fill(want + b * 4096, 1 << 20, b * 4096, 7);
			if (pwrite(fd, want + b * 4096, 1 << 20, b * 4096) != 1 << 20)
				die("bench: preallocate");
		}
		if (fsync(fd))
			die("bench: fsync");
	}
	for (long i = 0; i < n; i++)
		off[i] = (append ? i : (long long)below(blocks)) * 4096;
	t0 = now();
	for (long i = 0; i < n; i++) {
		double a;

		fill(want + off[i], 4096, off[i], 1000 + i);
		if (pwrite(fd, want + off[i], 4096, off[i]) != 4096)
			die("bench: pwrite");
		a = now();
		if (fsync(fd))
			die("bench: fsync");
		lat[i] = now() - a;
		sum += lat[i];
	}
	t1 = now();
	got = malloc(blocks * 4096LL);
	if (!got || pread(fd, got, blocks * 4096LL, 0) != blocks * 4096LL)
		die("bench: read back");
	if (memcmp(got, want, blocks * 4096LL)) {
		fprintf(stderr, "fsync-t: bench: %s does not read back what was written\n", file);
		return 1;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("fsync-bench phase=%s ops=%ld secs=%.3f ops_s=%.1f fsync_p50_us=%.0f "
	       "fsync_p99_us=%.0f fsync_max_us=%.0f fsync_mean_us=%.0f hash=%016llx\n", phase, n,
	       t1 - t0, n / (t1 - t0), lat[n / 2] * 1e6, lat[(n * 99) / 100] * 1e6,
	       lat[n - 1] * 1e6, sum / n * 1e6, hash_fd(fd));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	if (argc == 5 && (!strcmp(c, "setup") || !strcmp(c, "work") || !strcmp(c, "check"))) {
		pc_init(strtoull(argv[3], NULL, 0));
		if (!strcmp(c, "setup"))
			return cmd_setup(argv[2], argv[4]);
		if (!strcmp(c, "work"))
			return cmd_work(argv[2], argv[4]);
		return cmd_check(argv[2], argv[4]);
	}
	if (argc == 6 && !strcmp(c, "bench"))
		return cmd_bench(argv[2], argv[3], strtol(argv[4], NULL, 0),
				 strtoll(argv[5], NULL, 0));
	fprintf(stderr, "fsync-t: bad command (see the source for usage)\n");
	return 2;
}

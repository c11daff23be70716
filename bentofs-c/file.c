// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs files: open/release, fsync, fallocate, and file data through the page cache
 * (directories are in dir.c).
 *
 * Data: reads fill page-cache folios by calling the file system's read() directly into folio
 * memory; a readahead window (and a run of dirty folios at writeback) is mapped contiguously
 * with vm_map_ram() so that it takes ONE read()/write() call. Writes go through the generic
 * page-cache write path; dirty folios reach the file system at writeback, clamped to i_size so
 * the file system never sees data beyond the end of the file.
 *
 * fh: read()/write() get the handle of the open file when there is one (read_folio, readahead,
 * write_begin); writeback is not tied to an open file and passes fh 0.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/pagemap.h>
#include <linux/highmem.h>
#include <linux/vmalloc.h>
#include <linux/writeback.h>
#include <linux/falloc.h>
#include <linux/uio.h>
#include <linux/splice.h>
#include "bentofs.h"

#ifdef CONFIG_HIGHMEM
#error "bentofs hands folio memory to the file system through folio_address(): no HIGHMEM"
#endif

/* Largest single read()/write() of file data: 1 MiB. */
#define BENTO_MAX_BATCH		256

/* ---- open files ---------------------------------------------------------------------------- */

static int bento_open(struct inode *inode, struct file *file)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);
	u64 fh = 0;
	int err;

	BUILD_BUG_ON(sizeof(file->private_data) < sizeof(u64));
	err = generic_file_open(inode, file);
	if (err)
		return err;
	if (test_bit(BENTO_I_BAD, &BENTO_I(inode)->state))
		return -EIO;
	err = bento_status(sbi, "open",
			   bento_call(sbi, 0, open, &req, bento_ino(inode),
				      file->f_flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC),
				      &fh));
	if (err)
		return err;
	file->private_data = (void *)(uintptr_t)fh;
	return 0;
}

static int bento_release(struct inode *inode, struct file *file)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);

	/* Dirty pages may outlive the handle: writeback does not use it. */
	bento_call(sbi, 0, release, &req, bento_ino(inode), bento_fh(file), file->f_flags);
	return 0;
}

static int bento_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);
	int err;

	err = file_write_and_wait_range(file, start, end);
	if (err)
		return err;
	/* Times the kernel set (write_inode). */
	err = sync_inode_metadata(inode, 1);
	if (err)
		return err;
	return bento_status(sbi, "fsync", bento_call(sbi, 0, fsync, &req, bento_ino(inode),
						      bento_fh(file), datasync));
}

/*
 * fallocate: preallocation, PUNCH_HOLE and ZERO_RANGE (the page cache over the range written
 * back and dropped first), COLLAPSE_RANGE and INSERT_RANGE (everything from the offset to the
 * end of the file written back and dropped first, as ext4 does, since the blocks there move).
 * vfs_fallocate has refused the invalid combinations; what is refused here or by the file
 * system is refused before anything changes.
 */
static long bento_fallocate(struct file *file, int mode, loff_t offset, loff_t length)
{
	struct inode *inode = file_inode(file);
	struct address_space *mapping = inode->i_mapping;
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	bool punch = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
	bool shift = mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE);
	loff_t end = offset + length;
	loff_t size;
	BENTO_REQ(req);
	int err;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
		     FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))
		return -EOPNOTSUPP;
	/* Whole blocks only, as ext4 (the file system checks again). */
	if (shift && !IS_ALIGNED(offset | length, i_blocksize(inode)))
		return -EINVAL;

	inode_lock(inode);
	size = i_size_read(inode);
	if (mode & FALLOC_FL_COLLAPSE_RANGE) {
		/* The range may not reach the end of the file: that is truncate. */
		err = -EINVAL;
		if (end >= size)
			goto out;
	} else if (mode & FALLOC_FL_INSERT_RANGE) {
		err = -EFBIG;
		if (length > inode->i_sb->s_maxbytes - size)
			goto out;
		err = -EINVAL;
		if (offset >= size)
			goto out;
	} else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size) {
		err = inode_newsize_ok(inode, end);
		if (err)
			goto out;
	}
	err = file_modified(file);
	if (err)
		goto out;
	if (punch || shift) {
		/*
		 * Keep page faults and reads from refilling the range until the file system has
		 * changed it. Dirty data in the range is written back first (as ext4 does), so a
		 * mode the file system refuses, or a call that fails, loses nothing; then punch and
		 * zero keep edge folios with their data outside the range and zeroes inside, and
		 * collapse and insert drop everything from the offset on (offset is page aligned).
		 */
		filemap_invalidate_lock(mapping);
		err = filemap_write_and_wait_range(mapping, offset, shift ? LLONG_MAX : end - 1);
		if (err) {
			filemap_invalidate_unlock(mapping);
			goto out;
		}
		if (shift)
			truncate_pagecache(inode, offset);
		else
			truncate_pagecache_range(inode, offset, end - 1);
	}
	err = bento_status(sbi, "fallocate",
			   bento_call(sbi, -EOPNOTSUPP, fallocate, &req, bento_ino(inode),
				      bento_fh(file), offset, length, mode));
	if (punch && err)
		/* The range is unchanged on disk: the zeroed edge folios must go too. */
		invalidate_inode_pages2_range(mapping, offset >> PAGE_SHIFT,
					      (end - 1) >> PAGE_SHIFT);
	if (shift && !err)
		/* Nothing is cached from offset on, and nothing can be until the unlock. */
		i_size_write(inode, mode & FALLOC_FL_COLLAPSE_RANGE ? size - length : size + length);
	if (punch || shift)
		filemap_invalidate_unlock(mapping);
	if (!err && !shift && !(mode & FALLOC_FL_KEEP_SIZE) && end > i_size_read(inode)) {
		bento_zero_tail(inode, i_size_read(inode));
		truncate_setsize(inode, end);
	}
	/* blocks changed */
	bento_invalidate_attr(inode);
out:
	inode_unlock(inode);
	return err;
}

/* ---- reading into the page cache ----------------------------------------------------------- */

/* The NOFS scope also covers vm_map_ram()'s allocations. */
static void *bento_map_pages(struct page **pages, unsigned int nr)
{
	if (nr == 1)
		return page_address(pages[0]);
	return vm_map_ram(pages, nr, NUMA_NO_NODE);
}

static void bento_unmap_pages(void *addr, unsigned int nr)
{
	if (nr > 1)
		vm_unmap_ram(addr, nr);
}

/*
 * Reads bytes [pos, pos + len) of the file into `addr` (len bytes, contiguous), zero-filling
 * past the end of the file (the kernel's i_size, or a short read). 0 or -errno.
 */
static int bento_read_range(struct inode *inode, u64 fh, loff_t pos, void *addr, size_t len)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	loff_t isize = i_size_read(inode);
	size_t want = 0;
	s64 ret = 0;
	BENTO_REQ(req);

	if (test_bit(BENTO_I_BAD, &BENTO_I(inode)->state))
		return -EIO;
	if (pos < isize)
		want = min_t(loff_t, len, isize - pos);
	if (want) {
		ret = bento_call(sbi, -EOPNOTSUPP, read, &req, bento_ino(inode), fh, pos, addr,
				 want);
		if (ret < 0)
			return bento_status(sbi, "read", ret);
		if (ret > want) {
			pr_err_ratelimited("%s: read returned %lld of %zu bytes\n",
					   sbi->name, ret, want);
			return -EIO;
		}
	}
	if (ret < len)
		memset(addr + ret, 0, len - ret);
	return 0;
}

/* Fills a locked folio; marks it uptodate on success. The caller unlocks. */
static int bento_fill_folio(struct inode *inode, u64 fh, struct folio *folio)
{
	int err;

	err = bento_read_range(inode, fh, folio_pos(folio), folio_address(folio),
			       folio_size(folio));
	if (!err)
		folio_mark_uptodate(folio);
	return err;
}

static int bento_read_folio(struct file *file, struct folio *folio)
{
	int err = bento_fill_folio(folio->mapping->host, bento_fh(file), folio);

	folio_unlock(folio);
	return err;
}

/* Reads a run of contiguous locked folios with one call; marks and unlocks them. */
static void bento_read_batch(struct inode *inode, u64 fh, struct page **pages, unsigned int nr)
{
	unsigned int nofs, i;
	int err = -ENOMEM;
	void *addr;

	nofs = memalloc_nofs_save();
	addr = bento_map_pages(pages, nr);
	if (addr) {
		err = bento_read_range(inode, fh, page_offset(pages[0]), addr,
				       (size_t)nr << PAGE_SHIFT);
		bento_unmap_pages(addr, nr);
	}
	memalloc_nofs_restore(nofs);

	for (i = 0; i < nr;) {
		struct folio *folio = page_folio(pages[i]);

		/* No mapping for the batch: fall back to one call per folio. */
		if (!addr)
			bento_fill_folio(inode, fh, folio);
		else if (!err)
			folio_mark_uptodate(folio);
		folio_unlock(folio);
		i += folio_nr_pages(folio);
	}
}

static void bento_readahead(struct readahead_control *rac)
{
	struct inode *inode = rac->mapping->host;
	u64 fh = bento_fh(rac->file);
	unsigned int max = min_t(unsigned int, readahead_count(rac), BENTO_MAX_BATCH);
	struct page *one, **pages;
	unsigned int nr = 0;
	struct folio *folio;

	pages = max > 1 ? kmalloc_array(max, sizeof(*pages), GFP_NOFS | __GFP_NOWARN) : NULL;
	if (!pages) {
		pages = &one;
		max = 1;
	}
	/* The window is contiguous: batch it whole, up to BENTO_MAX_BATCH pages a call. */
	while ((folio = readahead_folio(rac))) {
		unsigned int n = folio_nr_pages(folio), i;

		if (nr && nr + n > max) {
			bento_read_batch(inode, fh, pages, nr);
			nr = 0;
		}
		if (n > max) {
			bento_fill_folio(inode, fh, folio);
			folio_unlock(folio);
			continue;
		}
		for (i = 0; i < n; i++)
			pages[nr++] = folio_page(folio, i);
	}
	if (nr)
		bento_read_batch(inode, fh, pages, nr);
	if (pages != &one)
		kfree(pages);
}

/* ---- writing: write_begin/write_end -------------------------------------------------------- */

/*
 * The file is about to grow past `size`: zero the page cache beyond `size` in the folio that
 * straddles it, where a shared mapping may have written (the file system never saw those
 * bytes; they must read as zeroes once inside the file).
 */
void bento_zero_tail(struct inode *inode, loff_t size)
{
	struct folio *folio;
	size_t off;

	if (!(size & ~PAGE_MASK))
		return;
	folio = __filemap_get_folio(inode->i_mapping, size >> PAGE_SHIFT, FGP_LOCK, 0);
	if (IS_ERR_OR_NULL(folio))
		return;
	off = offset_in_folio(folio, size);
	if (off && folio_test_uptodate(folio))
		folio_zero_segment(folio, off, folio_size(folio));
	folio_unlock(folio);
	folio_put(folio);
}

/* Delayed allocation: ask the file system for the space dirty data will need at writeback. */
int bento_reserve(struct inode *inode, loff_t pos, size_t len)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);

	return bento_status(sbi, "reserve",
			    bento_call(sbi, 0, reserve, bento_ino(inode), pos, len));
}

static int bento_write_begin_folio(struct file *file, struct address_space *mapping, loff_t pos,
				   unsigned int len, struct folio **foliop)
{
	struct inode *inode = mapping->host;
	loff_t isize = i_size_read(inode);
	struct folio *folio;
	size_t from;
	int err;

	/* Writing beyond the end of the file: the gap must read as zeroes. */
	if (pos > isize)
		bento_zero_tail(inode, isize);
	folio = __filemap_get_folio(mapping, pos >> PAGE_SHIFT,
				    FGP_LOCK | FGP_WRITE | FGP_CREAT | FGP_STABLE,
				    mapping_gfp_mask(mapping));
	if (IS_ERR_OR_NULL(folio))
		return folio ? PTR_ERR(folio) : -ENOMEM;
	/* A folio that becomes dirty now is written back later: the space must exist now. */
	if (!folio_test_dirty(folio)) {
		err = bento_reserve(inode, folio_pos(folio), folio_size(folio));
		if (err) {
			folio_unlock(folio);
			folio_put(folio);
			return err;
		}
	}
	*foliop = folio;
	if (folio_test_uptodate(folio))
		return 0;

	from = offset_in_folio(folio, pos);
	len = min_t(size_t, len, folio_size(folio) - from);
	if (from == 0 && len == folio_size(folio))
		return 0;		/* all overwritten; write_end marks it uptodate */
	if (folio_pos(folio) >= isize) {
		/* Nothing of the file here: zeroes around the write, no read. */
		folio_zero_segments(folio, 0, from, from + len, folio_size(folio));
		return 0;
	}
	/* Partly overwritten: read the rest first. */
	err = bento_fill_folio(inode, bento_fh(file), folio);
	if (err) {
		folio_unlock(folio);
		folio_put(folio);
		return err;
	}
	return 0;
}

static int bento_write_end_folio(struct file *file, struct address_space *mapping, loff_t pos,
				 unsigned int len, unsigned int copied, struct folio *folio)
{
	struct inode *inode = mapping->host;
	loff_t last = pos + copied;

	if (!folio_test_uptodate(folio)) {
		/* A short copy into a folio we did not read: retry the whole thing. */
		if (copied < len) {
			copied = 0;
			goto out;
		}
		folio_mark_uptodate(folio);
	}
	if (!copied)
		goto out;
	/* Under the folio lock and before it is dirty: writeback sees the new size. */
	if (last > inode->i_size)
		i_size_write(inode, last);
	folio_mark_dirty(folio);
out:
	folio_unlock(folio);
	folio_put(folio);
	return copied;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
static int bento_write_begin(struct file *file, struct address_space *mapping, loff_t pos,
			     unsigned int len, struct folio **foliop, void **fsdata)
{
	return bento_write_begin_folio(file, mapping, pos, len, foliop);
}

static int bento_write_end(struct file *file, struct address_space *mapping, loff_t pos,
			   unsigned int len, unsigned int copied, struct folio *folio, void *fsdata)
{
	return bento_write_end_folio(file, mapping, pos, len, copied, folio);
}
#else
static int bento_write_begin(struct file *file, struct address_space *mapping, loff_t pos,
			     unsigned int len, struct page **pagep, void **fsdata)
{
	struct folio *folio;
	int err;

	err = bento_write_begin_folio(file, mapping, pos, len, &folio);
	if (!err)
		*pagep = folio_file_page(folio, pos >> PAGE_SHIFT);
	return err;
}

static int bento_write_end(struct file *file, struct address_space *mapping, loff_t pos,
			   unsigned int len, unsigned int copied, struct page *page, void *fsdata)
{
	return bento_write_end_folio(file, mapping, pos, len, copied, page_folio(page));
}
#endif

/* ---- writeback ----------------------------------------------------------------------------- */

/* A run of contiguous folios under writeback, written with one call. */
struct bento_wb {
	struct inode *inode;
	struct page **pages;
	unsigned int max;
	unsigned int nr;
	loff_t pos;
	size_t len;		/* bytes to write: the folios, the last one clamped to i_size */
	bool closed;		/* ends at i_size: nothing can follow */
	int err;
};

static void bento_wb_flush(struct bento_wb *wb)
{
	struct inode *inode = wb->inode;
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	unsigned int nofs, i;
	void *addr;
	s64 ret = -ENOMEM;
	BENTO_REQ(req);

	nofs = memalloc_nofs_save();
	addr = bento_map_pages(wb->pages, wb->nr);
	if (addr) {
		ret = bento_call(sbi, -EOPNOTSUPP, write, &req, bento_ino(inode), 0, wb->pos, addr,
				 wb->len);
		bento_unmap_pages(addr, wb->nr);
	} else {
		/* No contiguous mapping: one call per folio. */
		size_t done = 0;

		for (i = 0; i < wb->nr && done < wb->len;) {
			struct folio *folio = page_folio(wb->pages[i]);
			size_t n = min_t(size_t, folio_size(folio), wb->len - done);

			ret = bento_call(sbi, -EOPNOTSUPP, write, &req, bento_ino(inode), 0,
					 wb->pos + done, folio_address(folio), n);
			if (ret != n)
				break;
			done += n;
			i += folio_nr_pages(folio);
		}
		if (ret >= 0)
			ret = done;
	}
	memalloc_nofs_restore(nofs);

	if (ret < 0) {
		ret = bento_status(sbi, "write", ret);
	} else if (ret != wb->len) {
		pr_err_ratelimited("%s: write of inode %llu wrote %lld of %zu bytes\n",
				   sbi->name, bento_ino(inode), ret, wb->len);
		ret = -EIO;
	}
	if (ret == -ENOMEM) {
		/* Out of memory is passing: the folios stay dirty for the next writeback. The
		 * caller (fsync) hears ENOMEM; nothing is lost, so the mapping records no error. */
		pr_warn_ratelimited("%s on %s: writeback of inode %llu at %lld (+%zu): out of memory, retried later\n",
				    sbi->name, inode->i_sb->s_id, bento_ino(inode), wb->pos,
				    wb->len);
		if (!wb->err)
			wb->err = ret;
	} else if (ret < 0) {
		/* The data is lost; fsync (and syncfs) report the error. A shut-down mount
		 * refuses it by design: nothing to log. */
		if (!bento_shut_down(sbi))
			pr_warn_ratelimited("%s on %s: writeback of inode %llu at %lld (+%zu) failed: %lld\n",
					    sbi->name, inode->i_sb->s_id, bento_ino(inode),
					    wb->pos, wb->len, ret);
		mapping_set_error(inode->i_mapping, ret);
		if (!wb->err)
			wb->err = ret;
	}
	for (i = 0; i < wb->nr;) {
		struct folio *folio = page_folio(wb->pages[i]);

		/* Under writeback, truncation waits for it: dirtying is safe without the lock. */
		if (ret == -ENOMEM)
			folio_mark_dirty(folio);
		folio_end_writeback(folio);
		i += folio_nr_pages(folio);
	}
	bento_invalidate_attr(inode);	/* blocks */
	wb->nr = 0;
	wb->len = 0;
	wb->closed = false;
}

static int bento_writepage_cb(struct folio *folio, struct writeback_control *wbc, void *data)
{
	struct bento_wb *wb = data;
	struct inode *inode = wb->inode;
	loff_t isize = i_size_read(inode);
	loff_t pos = folio_pos(folio);
	unsigned int n = folio_nr_pages(folio), i;
	size_t len;

	if (pos >= isize) {
		/* Entirely beyond the end of the file: a truncate is about to drop it. */
		folio_unlock(folio);
		return 0;
	}
	len = min_t(loff_t, folio_size(folio), isize - pos);
	/* Straddles i_size: what a mapping wrote past it is not file data. */
	if (len < folio_size(folio))
		folio_zero_segment(folio, len, folio_size(folio));

	if (wb->nr && (wb->closed || wb->pos + wb->len != pos || wb->nr + n > wb->max))
		bento_wb_flush(wb);

	folio_start_writeback(folio);
	folio_unlock(folio);
	if (!wb->nr)
		wb->pos = pos;
	if (n > wb->max) {
		/* A folio larger than the batch, on its own: its head page maps all of it
		 * (page_address, no HIGHMEM). */
		struct page *head = folio_page(folio, 0), **saved = wb->pages;

		wb->pages = &head;
		wb->nr = 1;
		wb->len = len;
		bento_wb_flush(wb);
		wb->pages = saved;
		return 0;
	}
	for (i = 0; i < n; i++)
		wb->pages[wb->nr++] = folio_page(folio, i);
	wb->len += len;
	if (len < folio_size(folio))
		wb->closed = true;
	return 0;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static int bento_writepage_page_cb(struct page *page, struct writeback_control *wbc, void *data)
{
	return bento_writepage_cb(page_folio(page), wbc, data);
}
#define BENTO_WRITEPAGE_CB bento_writepage_page_cb
#else
#define BENTO_WRITEPAGE_CB bento_writepage_cb
#endif

static int bento_writepages(struct address_space *mapping, struct writeback_control *wbc)
{
	struct bento_wb wb = { .inode = mapping->host, .max = BENTO_MAX_BATCH };
	struct rw_semaphore *sem = &BENTO_I(mapping->host)->wb_sem;
	struct page *one;
	int err;

	/* A shrinking setattr is in the file system (bento_setattr): the folios wait for it. */
	if (wbc->sync_mode == WB_SYNC_NONE) {
		if (!down_read_trylock(sem))
			return 0;
	} else {
		down_read(sem);
	}
	wb.pages = kmalloc_array(wb.max, sizeof(*wb.pages), GFP_NOFS | __GFP_NOWARN);
	if (!wb.pages) {
		wb.pages = &one;
		wb.max = 1;
	}
	err = write_cache_pages(mapping, wbc, BENTO_WRITEPAGE_CB, &wb);
	if (wb.nr)
		bento_wb_flush(&wb);
	if (wb.pages != &one)
		kfree(wb.pages);
	up_read(sem);
	return err ? err : wb.err;
}

/* ---- tables -------------------------------------------------------------------------------- */

const struct address_space_operations bento_aops = {
	.read_folio	= bento_read_folio,
	.readahead	= bento_readahead,
	.writepages	= bento_writepages,
	.dirty_folio	= filemap_dirty_folio,
	.write_begin	= bento_write_begin,
	.write_end	= bento_write_end,
	.migrate_folio	= filemap_migrate_folio,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	.error_remove_folio = generic_error_remove_folio,
#else
	.error_remove_page = generic_error_remove_page,
#endif
};

const struct file_operations bento_file_ops = {
	.llseek		= generic_file_llseek,
	.read_iter	= bento_read_iter,
	.write_iter	= bento_write_iter,
	.mmap		= bento_mmap,
	.open		= bento_open,
	.release	= bento_release,
	.fsync		= bento_fsync,
	.fallocate	= bento_fallocate,
	.splice_read	= bento_splice_read,
	.splice_write	= iter_file_splice_write,
	.unlocked_ioctl	= bento_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

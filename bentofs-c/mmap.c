// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs shared mappings: page faults read through the page cache (filemap_fault), and a store
 * that dirties a folio first reserves its space (delayed allocation), under the freeze
 * protection of page faults: while the file system is frozen the store waits, so nothing is
 * reserved or dirtied behind a freeze. A shut-down mount refuses new mappings (EIO) and stores
 * (SIGBUS), as ext4 does.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include "bentofs.h"

/*
 * filemap_page_mkwrite() with the reservation inside its sb_start_pagefault() section (it takes
 * the protection itself, and a nested one could wait behind a freeze that waits for us).
 * SIGBUS when there is no space for the folio, as ext4.
 */
static vm_fault_t bento_page_mkwrite(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct inode *inode = file_inode(file);
	struct super_block *sb = inode->i_sb;
	struct folio *folio = page_folio(vmf->page);
	vm_fault_t ret = VM_FAULT_LOCKED;
	int err;

	sb_start_pagefault(sb);
	if (unlikely(bento_shut_down(BENTO_SB(sb)))) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	file_update_time(file);
	if (!folio_test_dirty(folio)) {
		err = bento_reserve(inode, folio_pos(folio), folio_size(folio));
		if (err) {
			ret = vmf_error(err);
			goto out;
		}
	}
	folio_lock(folio);
	if (folio->mapping != inode->i_mapping) {
		/* Truncated meanwhile: the fault is retried. */
		folio_unlock(folio);
		ret = VM_FAULT_NOPAGE;
		goto out;
	}
	folio_mark_dirty(folio);
	folio_wait_stable(folio);
out:
	sb_end_pagefault(sb);
	return ret;
}

static const struct vm_operations_struct bento_vm_ops = {
	.fault		= filemap_fault,
	.map_pages	= filemap_map_pages,
	.page_mkwrite	= bento_page_mkwrite,
};

int bento_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (unlikely(bento_shut_down(BENTO_SB(file_inode(file)->i_sb))))
		return -EIO;
	file_accessed(file);
	vma->vm_ops = &bento_vm_ops;
	return 0;
}

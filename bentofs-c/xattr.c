// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs extended attributes: the user.*, trusted.* and security.* handlers and listxattr.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/xattr.h>
#include "bentofs.h"

static int bento_xattr_get(const struct xattr_handler *handler, struct dentry *dentry,
			   struct inode *inode, const char *name, void *value, size_t size)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	const char *full = xattr_full_name(handler, name);
	BENTO_REQ(req);
	int ret;

	if (bento_is_bad(inode))
		return -EIO;
	size = min_t(size_t, size, XATTR_SIZE_MAX);
	ret = bento_call(sbi, -EOPNOTSUPP, getxattr, &req, bento_ino(inode), full, strlen(full),
			 value, size);
	if (ret < 0)
		return bento_status(sbi, "getxattr", ret);
	if (size && ret > size)
		return -EIO;
	return ret;
}

static int bento_xattr_set(const struct xattr_handler *handler, BENTO_IDMAP,
			   struct dentry *dentry, struct inode *inode, const char *name,
			   const void *value, size_t size, int flags)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	const char *full = xattr_full_name(handler, name);
	BENTO_REQ(req);
	int err;

	if (bento_is_bad(inode))
		return -EIO;
	if (!value)
		err = bento_call(sbi, -EOPNOTSUPP, removexattr, &req, bento_ino(inode), full,
				 strlen(full));
	else
		err = bento_call(sbi, -EOPNOTSUPP, setxattr, &req, bento_ino(inode), full,
				 strlen(full), value, size, flags);
	err = bento_status(sbi, value ? "setxattr" : "removexattr", err);
	if (!err)
		bento_inode_changed(inode, 0);
	return err;
}

/* Drops the trusted.* names from a list of NUL-terminated names; returns the new length. */
static ssize_t bento_drop_trusted(char *list, ssize_t len)
{
	char *src = list, *dst = list, *end = list + len;

	while (src < end) {
		size_t n = strnlen(src, end - src) + 1;

		if (strncmp(src, XATTR_TRUSTED_PREFIX, XATTR_TRUSTED_PREFIX_LEN)) {
			memmove(dst, src, min_t(size_t, n, end - src));
			dst += n;
		}
		src += n;
	}
	return min(dst, end) - list;
}

static ssize_t bento_list_raw(struct inode *inode, char *list, size_t size)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);
	int ret;

	ret = bento_call(sbi, -EOPNOTSUPP, listxattr, &req, bento_ino(inode), list, size);
	if (ret < 0)
		return bento_status(sbi, "listxattr", ret);
	if (size && ret > size)
		return -EIO;
	return ret;
}

/* trusted.* names are listed only to CAP_SYS_ADMIN, as the kernel's own file systems do. */
ssize_t bento_listxattr(struct dentry *dentry, char *list, size_t size)
{
	struct inode *inode = d_inode(dentry);
	ssize_t ret, len;
	char *buf;

	if (bento_is_bad(inode))
		return -EIO;
	size = min_t(size_t, size, XATTR_LIST_MAX);
	if (capable(CAP_SYS_ADMIN))
		return bento_list_raw(inode, list, size);
	if (size) {
		ret = bento_list_raw(inode, list, size);
		return ret < 0 ? ret : bento_drop_trusted(list, ret);
	}
	/* The size a caller must allocate: what remains after dropping trusted.* names. */
	len = bento_list_raw(inode, NULL, 0);
	if (len <= 0)
		return len;
	buf = kvmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = bento_list_raw(inode, buf, len);
	if (ret >= 0)
		ret = bento_drop_trusted(buf, ret);
	else if (ret == -ERANGE)
		ret = len;	/* grew meanwhile: an upper bound is still a valid answer */
	kvfree(buf);
	return ret;
}

static const struct xattr_handler bento_xattr_user = {
	.prefix	= XATTR_USER_PREFIX,
	.get	= bento_xattr_get,
	.set	= bento_xattr_set,
};

static const struct xattr_handler bento_xattr_trusted = {
	.prefix	= XATTR_TRUSTED_PREFIX,
	.get	= bento_xattr_get,
	.set	= bento_xattr_set,
};

static const struct xattr_handler bento_xattr_security = {
	.prefix	= XATTR_SECURITY_PREFIX,
	.get	= bento_xattr_get,
	.set	= bento_xattr_set,
};

const struct xattr_handler *bento_xattr_handlers[] = {
	&bento_xattr_user,
	&bento_xattr_trusted,
	&bento_xattr_security,
	NULL,
};

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live upgrade (docs/upgrade.md): bento_register_fs() of a name another module registered moves
 * every mount of it to the new module, without unmounting and without a failed call.
 *
 * All or nothing, over all the mounts of the name: each mount is quiesced (its upgrade
 * semaphore taken for writing: new calls wait, calls in flight finish), the old version exports
 * its state (after a checkpoint) and the new version imports it into a new instance, all mounts
 * in parallel. Only when every import succeeded does any mount switch; otherwise the new
 * instances are dropped and the old ones simply continue (export leaves them intact), and the
 * load fails. Half an upgrade is impossible: a mount left on a module whose init failed would
 * call freed code.
 *
 * Called with bento_registry_lock held, for the whole upgrade: a mount starting meanwhile waits
 * for it and then uses the new version (bento_fill_super), and /proc/fs/bento never shows a mix.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/blkdev.h>
#include <linux/ktime.h>
#include "bentofs.h"

bool bento_can_export(const struct bento_ops *ops)
{
	return ops->ops_size >= offsetofend(struct bento_ops, drop) && ops->export_state &&
	       ops->drop;
}

bool bento_can_import(const struct bento_ops *ops)
{
	return ops->ops_size >= offsetofend(struct bento_ops, drop) && ops->import_state &&
	       ops->drop;
}

/* What the mounts' work items share (see bento_upgrade_locked). */
struct bento_upgrade {
	struct bento_fs_type *new;
	atomic_t moving;		/* work items still quiescing and moving their state */
	struct completion moved;	/* ... none left */
};

/* One mount being upgraded, by its own work item. */
struct bento_upgrade_slot {
	struct work_struct work;
	struct bento_upgrade *up;
	struct bento_sb_info *sbi;
	struct bento_fs *new_fs;	/* the new version's instance, until the swap */
	int err;
	ktime_t held;			/* since when calls into this mount wait */
	s64 quiesce_us, export_us, import_us;	/* for the log line */
};

/* Export the old instance's state and import it into a new one. 0 or -errno; logs why not. */
static int bento_move_state(struct bento_upgrade_slot *slot, struct bento_fs_type *new)
{
	struct bento_sb_info *sbi = slot->sbi;
	struct super_block *sb = sbi->sb;
	struct bento_call_ctx ctx;
	u8 *state = NULL;
	u64 len = 0;
	ktime_t t0 = ktime_get(), t1;
	int err;

	/* A panic in the export fails the mount (the old instance); in the import only the
	 * upgrade (the new instance is abandoned). */
	bento_ctx_begin(&ctx, sbi, sbi->type, "export_state", true);
	err = bento_guard(&ctx, sbi->ops, export_state, sbi->fs, &state, &len);
	bento_ctx_end(&ctx);
	err = bento_status(sbi, "export_state", err);
	t1 = ktime_get();
	slot->export_us = ktime_us_delta(t1, t0);
	if (bento_failed(sbi)) {
		pr_err("upgrade %s on %s: version %s panicked exporting its state: the mount is failed and stays on it\n",
		       sbi->name, sb->s_id, bento_version(sbi->type));
		state = NULL;	/* whatever it was, not ours */
		goto out;
	}
	if (err) {
		pr_err("upgrade %s on %s: version %s could not export its state: %d\n", sbi->name,
		       sb->s_id, bento_version(sbi->type), err);
		goto out;
	}
	bento_ctx_begin(&ctx, sbi, new, "import_state", false);
	err = bento_guard(&ctx, new->ops, import_state, sb->s_bdev,
			  bdev_nr_bytes(sb->s_bdev) >> BENTO_BLOCK_SHIFT, state, len, &slot->new_fs);
	bento_ctx_end(&ctx);
	err = bento_status(sbi, "import_state", err);
	slot->import_us = ktime_us_delta(ktime_get(), t1);
	if (!err && !slot->new_fs)
		err = -EIO;
	if (err) {
		slot->new_fs = NULL;
		pr_err("upgrade %s on %s: version %s refused the state of version %s (%llu bytes): %d\n",
		       sbi->name, sb->s_id, bento_version(new), bento_version(sbi->type), len, err);
	}
out:
	if (state)
		bento_ks_free(state);
	return err;
}

/*
 * Point the mount at the new version. Under the upgrade semaphore (no call in flight) and
 * bento_registry_lock (readers of sbi->type; held by the registering task, which waits for
 * us). The old instance goes without any I/O: its state lives on in the new one. The mount's
 * module reference moves: the old module can be unloaded.
 */
static void bento_swap(struct bento_upgrade_slot *slot, struct bento_fs_type *new)
{
	struct bento_sb_info *sbi = slot->sbi;
	struct bento_fs_type *old = sbi->type;
	struct bento_fs *old_fs = sbi->fs;
	struct bento_call_ctx ctx;

	__module_get(new->owner);	/* live: it is registering; the caller checked */
	WRITE_ONCE(sbi->ops, new->ops);
	WRITE_ONCE(sbi->fs, slot->new_fs);
	sbi->type = new;
	slot->new_fs = NULL;
	/* A panic in drop only leaks the old instance. */
	bento_ctx_begin(&ctx, sbi, old, "drop", false);
	bento_guard(&ctx, old->ops, drop, old_fs);
	bento_ctx_end(&ctx);
	module_put(old->owner);
}

/*
 * One mount: quiesce it and move its state. The work item returns holding the upgrade semaphore
 * for writing, handed over to the registering task, which applies the verdict: a work item that
 * waited for the verdict would keep its worker, and with more mounts than the workqueue runs at
 * once (512) the last ones would never start.
 */
static void bento_upgrade_work(struct work_struct *work)
{
	struct bento_upgrade_slot *slot = container_of(work, struct bento_upgrade_slot, work);
	struct bento_upgrade *up = slot->up;
	struct bento_sb_info *sbi = slot->sbi;
	ktime_t t0 = ktime_get();

	percpu_down_write(&sbi->upgrade);
	slot->held = ktime_get();
	slot->quiesce_us = ktime_us_delta(slot->held, t0);
	/* No instance: the mount failed to mount, or its last unmount raced with the pin. A
	 * mount failed by a panic (before, or in the export) is left alone: bento_upgrade_finish
	 * keeps it on its old version, which it pins until it is unmounted. */
	if (sbi->fs && !bento_dead(sbi)) {
		/* The export commits: not behind a freeze begun since bento_upgrade_locked()
		 * checked (a freeze waits for this before it commits itself). */
		if (sb_start_intwrite_trylock(sbi->sb)) {
			slot->err = bento_move_state(slot, up->new);
			sb_end_intwrite(sbi->sb);
		} else {
			pr_err("upgrade %s on %s refused: it is being frozen\n", sbi->name,
			       sbi->sb->s_id);
			slot->err = -EBUSY;
		}
	}
	if (bento_dead(sbi))
		slot->err = 0;
	bento_rwsem_handover(&sbi->upgrade);
	if (atomic_dec_and_test(&up->moving))
		complete(&up->moved);
}

/* The verdict for one quiesced mount: swap, or drop the new instance; then let calls in. */
static void bento_upgrade_finish(struct bento_upgrade_slot *slot, struct bento_fs_type *new,
				 bool commit)
{
	struct bento_sb_info *sbi = slot->sbi;
	struct bento_call_ctx ctx;

	bento_rwsem_takeover(&sbi->upgrade);
	if (commit && sbi->fs && !bento_dead(sbi)) {
		bento_swap(slot, new);
	} else if (slot->new_fs) {
		bento_ctx_begin(&ctx, sbi, new, "drop", false);
		bento_guard(&ctx, new->ops, drop, slot->new_fs);
		bento_ctx_end(&ctx);
		slot->new_fs = NULL;
	}
	percpu_up_write(&sbi->upgrade);
}

/**
 * bento_upgrade_locked - move every mount of @reg to @new (see the top of this file)
 * @reg: the registration, whose current type is the old version
 * @new: the new version, from another module (being loaded)
 * @pinned: set to an array of super blocks the caller must give to bento_unpin_supers() once
 *	it dropped bento_registry_lock (their last reference may unmount them, which takes it)
 * @nr_pinned: its length
 *
 * Return: 0 when @reg now points at @new and every mount runs it; otherwise -errno, with the
 * reason in the kernel log, and nothing changed.
 */
int bento_upgrade_locked(struct bento_registration *reg, struct bento_fs_type *new,
			 struct super_block ***pinned, unsigned int *nr_pinned)
{
	struct bento_fs_type *old = reg->type;
	struct bento_upgrade_slot *slots = NULL;
	struct super_block **sbs = NULL;
	struct bento_sb_info *sbi;
	unsigned int n = 0, i, active = 0;
	struct bento_upgrade up;
	ktime_t t0 = ktime_get();
	s64 quiesce_us = 0, export_us = 0, import_us = 0, held_us = 0;
	int err = 0;

	lockdep_assert_held(&bento_registry_lock);
	*pinned = NULL;
	*nr_pinned = 0;
	if (!bento_can_export(old->ops) || !bento_can_import(new->ops)) {
		bool exp = bento_can_export(old->ops);

		pr_err("upgrade %s %s -> %s refused: %s cannot %s a state\n", reg->type->name,
		       bento_version(old), bento_version(new),
		       bento_version(exp ? new : old), exp ? "import" : "export");
		return -EINVAL;
	}

	if (reg->nr_mounts) {
		slots = kcalloc(reg->nr_mounts, sizeof(*slots), GFP_KERNEL);
		sbs = kcalloc(reg->nr_mounts, sizeof(*sbs), GFP_KERNEL);
		if (!slots || !sbs) {
			err = -ENOMEM;
			goto out;
		}
	}
	/*
	 * Pin every mount with an active reference (as grab_super() does), so none is unmounted
	 * under us; one already on its way out (no active reference left) is skipped: it finishes
	 * on the old version, which it pins, and leaves the registry in bento_kill_sb().
	 */
	list_for_each_entry(sbi, &reg->mounts, type_link) {
		if (n == reg->nr_mounts)
			break;
		/* A failed mount stays on its version (pinned until it is unmounted), never called
		 * again. */
		if (bento_dead(sbi)) {
			pr_warn("upgrade %s: %s is %s, it stays on %s\n", sbi->name,
				sbi->sb->s_id, bento_failed(sbi) ? "failed (a panic)" : "shut down",
				bento_version(sbi->type));
			continue;
		}
		if (!atomic_inc_not_zero(&sbi->sb->s_active))
			continue;
		sbs[n] = sbi->sb;
		slots[n++].sbi = sbi;
	}
	*pinned = sbs;
	*nr_pinned = n;

	for (i = 0; i < n; i++) {
		sbi = slots[i].sbi;
		if (!sbi->quiesce) {
			pr_err("upgrade %s %s -> %s refused: %s was mounted with bentofs quiesce=0\n",
			       reg->type->name, bento_version(old), bento_version(new), sbi->sb->s_id);
			err = -EBUSY;
			goto out;
		}
		/* The export commits a checkpoint: not on a frozen file system. */
		if (sbi->sb->s_writers.frozen != SB_UNFROZEN) {
			pr_err("upgrade %s %s -> %s refused: %s is frozen\n", reg->type->name,
			       bento_version(old), bento_version(new), sbi->sb->s_id);
			err = -EBUSY;
			goto out;
		}
	}

	/*
	 * Every mount in parallel, each by a work item: quiesce, export, import (so the stall is
	 * the slowest mount's, not the sum); then, once all are done, the verdict, applied here:
	 * every mount switches, or none (bento_swap() changes sbi->type under our
	 * bento_registry_lock).
	 */
	atomic_set(&up.moving, n);
	init_completion(&up.moved);
	up.new = new;
	for (i = 0; i < n; i++) {
		slots[i].up = &up;
		INIT_WORK(&slots[i].work, bento_upgrade_work);
		queue_work(system_unbound_wq, &slots[i].work);
	}
	if (n)
		wait_for_completion(&up.moved);
	for (i = 0; i < n; i++) {
		if (slots[i].err && !err)
			err = slots[i].err;
		active += slots[i].sbi->fs && !bento_dead(slots[i].sbi);
		quiesce_us = max(quiesce_us, slots[i].quiesce_us);
		export_us = max(export_us, slots[i].export_us);
		import_us = max(import_us, slots[i].import_us);
	}
	if (!err)
		reg->type = new;
	for (i = 0; i < n; i++) {
		bento_upgrade_finish(&slots[i], new, !err);
		held_us = max(held_us, ktime_us_delta(ktime_get(), slots[i].held));
	}

	if (err)
		pr_err("upgrade %s %s -> %s failed (%d): every mount stays on %s\n",
		       reg->type->name, bento_version(old), bento_version(new), err, bento_version(old));
	else
		pr_info("upgraded %s %s -> %s: %u mounts, calls held %lld us (slowest mount: quiesce %lld us, export %lld us, import %lld us), total %lld us\n",
			reg->type->name, bento_version(old), bento_version(new), active, held_us,
			quiesce_us, export_us, import_us, ktime_us_delta(ktime_get(), t0));
out:
	kfree(slots);
	if (!n) {
		kfree(sbs);
		*pinned = NULL;
	}
	return err;
}

void bento_unpin_supers(struct super_block **pinned, unsigned int nr_pinned)
{
	unsigned int i;

	for (i = 0; i < nr_pinned; i++)
		deactivate_super(pinned[i]);
	kfree(pinned);
}

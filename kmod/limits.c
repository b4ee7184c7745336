// SPDX-License-Identifier: GPL-2.0
/*
 * Limits: pages and segments, globally and per user.
 *
 * A segment's pages are charged to the user who created it (by kuid, so a
 * user is the same user in every namespace), whoever grows it, as SysV
 * shared memory charges its creator; the memory cgroup of the process that
 * allocates a page is charged for it as well. Segments count against their
 * creator until they are destroyed, unlinked or not. The global limits keep
 * the module's total in check; the per-user ones keep one user from taking
 * it all. CAP_SYS_RESOURCE (in the initial user namespace) lifts the
 * per-user limits for the task that has it, as it lifts RLIMIT_* ones; the
 * global limits hold for everyone.
 */
#include <linux/capability.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "shmk.h"

static DEFINE_HASHTABLE(shmk_users, 6);
static DEFINE_SPINLOCK(shmk_users_lock);

/* Whether the per-user limits apply to the calling task. */
static bool shmk_user_limited(void)
{
	return !ns_capable_noaudit(&init_user_ns, CAP_SYS_RESOURCE);
}

/**
 * shmk_user_get - the accounting record of a user, created on first use
 * @uid: the user
 *
 * Returns it referenced, or NULL when out of memory.
 */
struct shmk_user *shmk_user_get(kuid_t uid)
{
	u32 key = __kuid_val(uid);
	struct shmk_user *user, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	spin_lock(&shmk_users_lock);
	hash_for_each_possible(shmk_users, user, node, key) {
		if (uid_eq(user->uid, uid)) {
			refcount_inc(&user->ref);
			goto out;
		}
	}
	user = fresh;
	fresh = NULL;
	if (user) {
		user->uid = uid;
		refcount_set(&user->ref, 1);
		hash_add(shmk_users, &user->node, key);
	}
out:
	spin_unlock(&shmk_users_lock);
	kfree(fresh);
	return user;
}

void shmk_user_put(struct shmk_user *user)
{
	spin_lock(&shmk_users_lock);
	if (!refcount_dec_and_test(&user->ref)) {
		spin_unlock(&shmk_users_lock);
		return;
	}
	hash_del(&user->node);
	spin_unlock(&shmk_users_lock);
	WARN_ON_ONCE(user->nr_segments || user->nr_pages);
	kfree(user);
}

/**
 * shmk_charge_segment - count one more segment created by @user
 * @user: the creator
 *
 * Returns 0, or -ENOSPC past max_segments or max_segments_per_user.
 */
int shmk_charge_segment(struct shmk_user *user)
{
	bool limited = shmk_user_limited();
	int ret = 0;

	spin_lock(&shmk_users_lock);
	if ((limited &&
	     user->nr_segments >= READ_ONCE(shmk_max_segments_per_user)) ||
	    atomic_read(&shmk_nr_segments) >= READ_ONCE(shmk_max_segments)) {
		ret = -ENOSPC;
	} else {
		user->nr_segments++;
		atomic_inc(&shmk_nr_segments);
	}
	spin_unlock(&shmk_users_lock);
	return ret;
}

void shmk_uncharge_segment(struct shmk_user *user)
{
	spin_lock(&shmk_users_lock);
	user->nr_segments--;
	spin_unlock(&shmk_users_lock);
	atomic_dec(&shmk_nr_segments);
}

/**
 * shmk_charge_pages - account @nr more active pages of @seg
 * @seg: the segment; charged to its creator
 * @nr: pages
 *
 * Returns 0, or -ENOSPC past max_pages or max_pages_per_user.
 */
int shmk_charge_pages(struct shmk_segment *seg, unsigned long nr)
{
	struct shmk_user *user = seg->user;
	bool limited = shmk_user_limited();
	int ret = 0;

	spin_lock(&shmk_users_lock);
	if ((limited &&
	     user->nr_pages + nr > READ_ONCE(shmk_max_pages_per_user)) ||
	    atomic_long_read(&shmk_nr_pages) + nr > READ_ONCE(shmk_max_pages)) {
		ret = -ENOSPC;
	} else {
		user->nr_pages += nr;
		seg->charged += nr;
		atomic_long_add(nr, &shmk_nr_pages);
	}
	spin_unlock(&shmk_users_lock);
	return ret;
}

void shmk_uncharge_pages(struct shmk_segment *seg, unsigned long nr)
{
	spin_lock(&shmk_users_lock);
	seg->user->nr_pages -= nr;
	seg->charged -= nr;
	atomic_long_sub(nr, &shmk_nr_pages);
	spin_unlock(&shmk_users_lock);
}

void shmk_limits_init(void)
{
	unsigned long ram = totalram_pages();

	if (!shmk_max_pages)
		shmk_max_pages = ram / 2;
	if (!shmk_max_pages_per_user)
		shmk_max_pages_per_user = ram / 4;
}

/* Every segment is gone: so is every user record. */
void shmk_limits_exit(void)
{
	struct shmk_user *user;
	unsigned int bkt;

	hash_for_each(shmk_users, bkt, user, node)
		WARN(1, "shmk: user %u still charged\n", __kuid_val(user->uid));
}

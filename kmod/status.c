// SPDX-License-Identifier: GPL-2.0
/*
 * The status page: a read-only page that clients map to read the active
 * size, the generation and the client table without a system call.
 *
 * The client table carries pids, which must be those of the reader's pid
 * namespace. A segment therefore keeps one copy of the page per pid
 * namespace its clients attached from (a "view"), made by the first attach
 * from that namespace, written at every change and freed with its last
 * client; usually there is one.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "shmk.h"

/* Pid namespaces one segment's status page can be mapped from at once. */
#define SHMK_MAX_STATUS_VIEWS	16

static_assert(sizeof(struct shmk_status) <= PAGE_SIZE);

static void shmk_status_begin(struct shmk_status *st)
{
	WRITE_ONCE(st->seq, st->seq + 1);
	smp_wmb();	/* seq odd before the fields change */
}

static void shmk_status_end(struct shmk_status *st)
{
	smp_wmb();	/* fields written before seq turns even */
	WRITE_ONCE(st->seq, st->seq + 1);
}

/* Write everything into @view. Caller holds seg->status_lock. */
static void shmk_status_fill(struct shmk_segment *seg,
			     struct shmk_status_view *view)
{
	struct shmk_status *st = view->status;
	struct shmk_client *client;
	u32 n = 0;

	shmk_status_begin(st);
	WRITE_ONCE(st->segment_id, seg->id);
	WRITE_ONCE(st->size, seg->size);
	WRITE_ONCE(st->max_size, seg->max_size);
	WRITE_ONCE(st->generation, seg->generation);
	WRITE_ONCE(st->base_addr, READ_ONCE(seg->base_addr));
	WRITE_ONCE(st->nr_clients, seg->nr_clients);
	list_for_each_entry(client, &seg->clients, node) {
		struct shmk_client_info *ci;

		if (n == SHMK_STATUS_MAX_CLIENTS)
			break;
		ci = &st->clients[n++];
		ci->client_id = client->id;
		ci->pid = view->pid_ns ? pid_nr_ns(client->pid, view->pid_ns) :
					 0;
		ci->flags = client->flags;
		ci->reserved = 0;
		memcpy(ci->name, client->name, sizeof(ci->name));
	}
	if (n < st->table_len)
		memset(&st->clients[n], 0,
		       (st->table_len - n) * sizeof(st->clients[0]));
	WRITE_ONCE(st->table_len, n);
	shmk_status_end(st);
}

void shmk_status_view_free(struct shmk_status_view *view)
{
	if (view->pid_ns)
		put_pid_ns(view->pid_ns);
	__free_page(view->page);
	kfree(view);
}

static struct shmk_status_view *shmk_status_view_alloc(struct pid_namespace *ns)
{
	struct shmk_status_view *view;

	view = kzalloc(sizeof(*view), GFP_KERNEL_ACCOUNT);
	if (!view)
		return NULL;
	view->page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
				__GFP_NOWARN);
	if (!view->page) {
		kfree(view);
		return NULL;
	}
	view->status = page_address(view->page);
	view->status->magic = SHMK_STATUS_MAGIC;
	view->status->version = SHMK_STATUS_VERSION;
	view->pid_ns = ns ? get_pid_ns(ns) : NULL;
	return view;
}

/*
 * The creator's view, made with the segment so that creation fails early;
 * the creator's attach then finds it.
 */
int shmk_status_init(struct shmk_segment *seg)
{
	struct shmk_status_view *view;

	spin_lock_init(&seg->status_lock);
	INIT_LIST_HEAD(&seg->status_views);
	view = shmk_status_view_alloc(task_active_pid_ns(current));
	if (!view)
		return -ENOMEM;
	list_add(&view->node, &seg->status_views);
	seg->nr_status_views = 1;
	return 0;
}

void shmk_status_free(struct shmk_segment *seg)
{
	struct shmk_status_view *view, *tmp;

	list_for_each_entry_safe(view, tmp, &seg->status_views, node)
		shmk_status_view_free(view);
}

/**
 * shmk_status_view_get - the status page for the caller's pid namespace
 * @seg: the segment, its lock held
 *
 * Made on the first attach from that namespace. When the segment already
 * has SHMK_MAX_STATUS_VIEWS of them, the caller gets the view that shows
 * every pid as 0, rather than an error: nobody can use up the views and
 * keep others from attaching. Returns the view, with a user added, or NULL
 * when out of memory.
 */
struct shmk_status_view *shmk_status_view_get(struct shmk_segment *seg)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	struct shmk_status_view *view, *fresh;

	lockdep_assert_held(&seg->lock);
	list_for_each_entry(view, &seg->status_views, node)
		if (view->pid_ns == ns)
			goto found;
	if (seg->nr_status_views >= SHMK_MAX_STATUS_VIEWS) {
		ns = NULL;
		list_for_each_entry(view, &seg->status_views, node)
			if (!view->pid_ns)
				goto found;
	}
	fresh = shmk_status_view_alloc(ns);
	if (!fresh)
		return NULL;
	spin_lock(&seg->status_lock);
	shmk_status_fill(seg, fresh);
	list_add_tail(&fresh->node, &seg->status_views);
	spin_unlock(&seg->status_lock);
	if (ns)
		seg->nr_status_views++;
	view = fresh;
found:
	view->users++;
	return view;
}

/**
 * shmk_status_view_put - a client is gone
 * @seg: the segment, its lock held
 * @view: the client's view
 *
 * Returns the view when it has no user left, unlinked, for the caller to
 * free with shmk_status_view_free() once it dropped the lock; else NULL. A
 * view is mapped only by its users, whose handles the mappings hold.
 */
struct shmk_status_view *shmk_status_view_put(struct shmk_segment *seg,
					      struct shmk_status_view *view)
{
	lockdep_assert_held(&seg->lock);
	if (!view || --view->users)
		return NULL;
	spin_lock(&seg->status_lock);
	list_del(&view->node);
	spin_unlock(&seg->status_lock);
	if (view->pid_ns)
		seg->nr_status_views--;
	return view;
}

/* Publish size, generation and the client table. Caller holds seg->lock. */
void shmk_status_update(struct shmk_segment *seg)
{
	struct shmk_status_view *view;

	lockdep_assert_held(&seg->lock);
	spin_lock(&seg->status_lock);
	list_for_each_entry(view, &seg->status_views, node)
		shmk_status_fill(seg, view);
	spin_unlock(&seg->status_lock);
}

/* Record the first mapping's address; called from ->mmap, without seg->lock. */
void shmk_status_set_base(struct shmk_segment *seg, unsigned long addr)
{
	struct shmk_status_view *view;

	if (cmpxchg(&seg->base_addr, 0, addr) != 0)
		return;
	spin_lock(&seg->status_lock);
	list_for_each_entry(view, &seg->status_views, node) {
		shmk_status_begin(view->status);
		WRITE_ONCE(view->status->base_addr, addr);
		shmk_status_end(view->status);
	}
	spin_unlock(&seg->status_lock);
}

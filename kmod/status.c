// SPDX-License-Identifier: GPL-2.0
/*
 * The status page: a read-only page that clients map to read the active
 * size, the generation and the client table without a system call.
 *
 * The client table carries pids, which must be those of the reader's pid
 * namespace. A segment therefore keeps one copy of the page per pid
 * namespace it is mapped from (a "view"), made on the first mapping from
 * that namespace and written at every change; usually there is one.
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
		ci->pid = pid_nr_ns(client->pid, view->pid_ns);
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

static void shmk_status_view_free(struct shmk_status_view *view)
{
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
	view->pid_ns = get_pid_ns(ns);
	return view;
}

/* The creator's view, made with the segment so that creation fails early. */
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
 * shmk_status_view - the status page for the caller's pid namespace
 * @seg: the segment
 *
 * Returns the view (alive as long as @seg), or an ERR_PTR: -ENOMEM, or
 * -ENOSPC when the segment is already mapped from SHMK_MAX_STATUS_VIEWS
 * other namespaces.
 */
struct shmk_status_view *shmk_status_view(struct shmk_segment *seg)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	struct shmk_status_view *view, *fresh = NULL;
	int ret;

	ret = mutex_lock_killable(&seg->lock);
	if (ret)
		return ERR_PTR(ret);
	list_for_each_entry(view, &seg->status_views, node)
		if (view->pid_ns == ns)
			goto out;
	view = ERR_PTR(-ENOSPC);
	if (seg->nr_status_views >= SHMK_MAX_STATUS_VIEWS)
		goto out;
	fresh = shmk_status_view_alloc(ns);
	view = ERR_PTR(-ENOMEM);
	if (!fresh)
		goto out;
	spin_lock(&seg->status_lock);
	shmk_status_fill(seg, fresh);
	list_add_tail(&fresh->node, &seg->status_views);
	seg->nr_status_views++;
	spin_unlock(&seg->status_lock);
	view = fresh;
out:
	mutex_unlock(&seg->lock);
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

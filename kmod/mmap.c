// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping segments: ->mmap, the fault handler, and peer mapping, which
 * installs newly grown pages into every client's page tables before the
 * grow returns.
 */
#include <linux/cred.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "shmk.h"
#include "shmk_compat.h"

/* Pages allocated and installed per step of a grow. */
#define SHMK_BATCH	512
/* The most CPUs one grow fills pages on, whatever grow_threads says. */
#define SHMK_MAX_GROW_THREADS	16U

static const struct vm_operations_struct shmk_vm_ops;

static pgoff_t shmk_active_pages(struct address_space *mapping)
{
	return DIV_ROUND_UP(i_size_read(mapping->host), PAGE_SIZE);
}

static gfp_t shmk_gfp(struct address_space *mapping)
{
	return mapping_gfp_mask(mapping) | __GFP_NOWARN | __GFP_RETRY_MAYFAIL;
}

/*
 * Insert @nr pages for file offsets from @pgoff into @vma, which maps all of
 * them. A page that is already mapped there is skipped.
 */
static int shmk_insert(struct vm_area_struct *vma, pgoff_t pgoff,
		       struct page **pages, unsigned long nr)
{
	unsigned long addr = vma->vm_start +
			     ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);

	while (nr) {
		unsigned long left = nr;
		int ret = vm_insert_pages(vma, addr, pages, &left);

		addr += (nr - left) << PAGE_SHIFT;
		pages += nr - left;
		nr = left;
		if (!ret)
			break;
		if (ret != -EBUSY)
			return ret;
		addr += PAGE_SIZE;
		pages++;
		nr--;
	}
	return 0;
}

/* Whether @vma maps @mapping for a client that was not kicked. */
static bool shmk_vma_live(struct vm_area_struct *vma,
			  struct address_space *mapping)
{
	struct shmk_client *client;

	if (vma->vm_ops != &shmk_vm_ops || vma->vm_file->f_mapping != mapping)
		return false;
	client = vma->vm_file->private_data;
	return !READ_ONCE(client->kicked);
}

/**
 * shmk_peers_get - pin the address space of every attached process
 * @seg: the segment, its lock held
 *
 * Each process appears once, however many handles it holds; exiting ones
 * are left out. The caller drops the pins with shmk_peers_put() after
 * releasing seg->lock, so that a peer's exit_mmap() never runs under it.
 * Returns NULL when out of memory.
 */
struct shmk_peers *shmk_peers_get(struct shmk_segment *seg)
{
	struct shmk_client *client, *prev;
	struct shmk_peers *peers;

	lockdep_assert_held(&seg->lock);
	peers = kmalloc(struct_size(peers, mm, seg->nr_clients), GFP_KERNEL);
	if (!peers)
		return NULL;
	peers->nr = 0;
	list_for_each_entry(client, &seg->clients, node) {
		bool seen = false;

		list_for_each_entry(prev, &seg->clients, node) {
			if (prev == client)
				break;
			if (prev->mm == client->mm) {
				seen = true;
				break;
			}
		}
		if (!seen && mmget_not_zero(client->mm))
			peers->mm[peers->nr++] = client->mm;
	}
	return peers;
}

void shmk_peers_put(struct shmk_peers *peers)
{
	while (peers->nr)
		mmput(peers->mm[--peers->nr]);
	kfree(peers);
}

/*
 * Wait until no mmap() of the segment is in flight in any peer. ->mmap
 * fills a mapping before mmap_region() links it into the i_mmap tree, so
 * unmap_mapping_range() cannot see it until the mmap lock is dropped.
 */
static void shmk_peers_sync_mmap(struct shmk_peers *peers)
{
	unsigned int i;

	for (i = 0; i < peers->nr; i++) {
		mmap_read_lock(peers->mm[i]);
		mmap_read_unlock(peers->mm[i]);
	}
}

/* Insert pages [@first, @first + @nr) into each of @mm's mappings of @seg. */
static void shmk_map_into_mm(struct shmk_segment *seg, struct mm_struct *mm,
			     pgoff_t first, struct page **pages,
			     unsigned long nr)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct address_space *mapping = seg->shm->f_mapping;
	struct vm_area_struct *vma;

	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		pgoff_t start, end;

		if (!shmk_vma_live(vma, mapping))
			continue;
		start = max(first, vma->vm_pgoff);
		end = min(first + nr, vma->vm_pgoff + vma_pages(vma));
		/*
		 * On failure (no memory for page tables) the peer takes a
		 * fault on these pages instead; nothing is lost.
		 */
		if (start < end)
			shmk_insert(vma, start, pages + (start - first),
				    end - start);
	}
	mmap_read_unlock(mm);
}

static void shmk_populate_vma(struct vm_area_struct *vma);

/* Map every present page into the live mappings of every peer again. */
static void shmk_remap_peers(struct shmk_segment *seg,
			     struct shmk_peers *peers)
{
	struct address_space *mapping = seg->shm->f_mapping;
	struct vm_area_struct *vma;
	unsigned int i;

	lockdep_assert_held(&seg->lock);
	for (i = 0; i < peers->nr; i++) {
		VMA_ITERATOR(vmi, peers->mm[i], 0);

		mmap_read_lock(peers->mm[i]);
		for_each_vma(vmi, vma)
			if (shmk_vma_live(vma, mapping))
				shmk_populate_vma(vma);
		mmap_read_unlock(peers->mm[i]);
	}
}

/**
 * shmk_segment_evict - unmap the segment from clients marked kicked
 * @seg: the segment, its lock held
 * @peers: its clients' address spaces, the kicked ones included
 *
 * Kicked clients cannot map the segment any more; once no mmap() is in
 * flight, the whole segment is unmapped from everyone, and the mappings of
 * the clients still attached are filled in again. The kicked ones then get
 * SIGBUS on access.
 */
void shmk_segment_evict(struct shmk_segment *seg, struct shmk_peers *peers)
{
	lockdep_assert_held(&seg->lock);
	shmk_peers_sync_mmap(peers);
	unmap_mapping_range(seg->shm->f_mapping, 0, seg->max_size, 1);
	shmk_remap_peers(seg, peers);
}

/*
 * A grow's page filling, shared by the caller and the workers that help it
 * on other CPUs. Participants claim SHMK_BATCH-aligned batches in turn; on
 * x86-64, where a page table has 512 entries, each batch of a 2 MiB-aligned
 * mapping then fills a page table of its own.
 */
struct shmk_fill {
	struct shmk_segment *seg;
	struct shmk_peers *peers;
	pgoff_t first;
	pgoff_t last;
	atomic_long_t next;	/* start of the next unclaimed batch */
	atomic_t error;		/* the first error, or 0 */
	struct mem_cgroup *memcg;	/* the caller's, for the workers */
	const struct cred *cred;
};

struct shmk_fill_worker {
	struct work_struct work;
	struct shmk_fill *fill;
	struct page **pages;
};

/* Allocate pages [@first, @first + @nr) and install them in every peer. */
static int shmk_fill_batch(struct shmk_fill *fill, struct page **pages,
			   pgoff_t first, unsigned long nr)
{
	struct address_space *mapping = fill->seg->shm->f_mapping;
	gfp_t gfp = shmk_gfp(mapping);
	unsigned long i;
	unsigned int p;
	int ret = 0;

	for (i = 0; i < nr; i++) {
		struct page *page;

		page = shmem_read_mapping_page_gfp(mapping, first + i, gfp);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}
		pages[i] = page;
	}
	for (p = 0; !ret && fill->peers && p < fill->peers->nr; p++)
		shmk_map_into_mm(fill->seg, fill->peers->mm[p], first, pages,
				 nr);
	while (i)
		put_page(pages[--i]);
	return ret;
}

/* Fill batches until none is left or a participant failed. */
static void shmk_fill_run(struct shmk_fill *fill, struct page **pages,
			  bool caller)
{
	while (!atomic_read(&fill->error)) {
		pgoff_t start = atomic_long_fetch_add(SHMK_BATCH, &fill->next);
		pgoff_t first = max(start, fill->first);
		pgoff_t end = min_t(pgoff_t, start + SHMK_BATCH, fill->last);
		int ret;

		if (first >= end)
			break;
		ret = shmk_fill_batch(fill, pages, first, end - first);
		if (!ret && caller && fatal_signal_pending(current))
			ret = -EINTR;
		if (ret) {
			atomic_cmpxchg(&fill->error, 0, ret);
			break;
		}
		cond_resched();
	}
}

/*
 * A worker acts for the caller: its page cache and page table allocations
 * are charged to the caller's memory cgroup, and the memory commit check
 * sees the caller's credentials.
 */
static void shmk_fill_work(struct work_struct *work)
{
	struct shmk_fill_worker *w = container_of(work, typeof(*w), work);
	struct shmk_fill *fill = w->fill;
	const struct cred *old_cred = override_creds(fill->cred);
	struct mem_cgroup *old_memcg = set_active_memcg(fill->memcg);

	shmk_fill_run(fill, w->pages, false);
	set_active_memcg(old_memcg);
	revert_creds(old_cred);
}

/* How many workers should help fill @nr_batches batches. */
static unsigned int shmk_fill_helpers(unsigned long nr_batches)
{
	unsigned int threads = READ_ONCE(shmk_grow_threads);

	if (!threads)
		threads = num_online_cpus();
	threads = min3(threads, num_online_cpus(), SHMK_MAX_GROW_THREADS);
	return min_t(unsigned long, threads, nr_batches) - 1;
}

/**
 * shmk_segment_populate - allocate zeroed pages for a range of the segment
 * @seg: the segment; the range must lie below the backing file's i_size
 * @peers: install the pages into these processes' mappings too, or NULL
 * @first: first page offset
 * @last: page offset past the end
 *
 * Up to grow_threads CPUs share the work: the caller and workers from the
 * unbound workqueue, which it waits for. When the workers cannot be set up
 * the caller does all of it. Pages are charged to the caller's memory
 * cgroup. On error, pages already allocated stay in the page cache: the
 * caller cuts the range.
 */
int shmk_segment_populate(struct shmk_segment *seg, struct shmk_peers *peers,
			  pgoff_t first, pgoff_t last)
{
	struct shmk_fill fill = {
		.seg = seg, .peers = peers, .first = first, .last = last,
		.next = ATOMIC_LONG_INIT(round_down(first, SHMK_BATCH)),
		.error = ATOMIC_INIT(0),
	};
	struct shmk_fill_worker *helpers = NULL;
	unsigned int i, nr_helpers;
	struct page **pages;
	int ret;

	if (first >= last)
		return 0;
	nr_helpers = shmk_fill_helpers(DIV_ROUND_UP(last, SHMK_BATCH) -
				       first / SHMK_BATCH);
	if (nr_helpers)
		helpers = kcalloc(nr_helpers, sizeof(*helpers), GFP_KERNEL);
	if (!helpers)
		nr_helpers = 0;
	pages = kvmalloc_array((nr_helpers + 1) * SHMK_BATCH, sizeof(*pages),
			       GFP_KERNEL);
	if (!pages) {
		kfree(helpers);
		return -ENOMEM;
	}

	if (nr_helpers) {
		fill.memcg = get_mem_cgroup_from_mm(current->mm);
		fill.cred = get_current_cred();
	}
	for (i = 0; i < nr_helpers; i++) {
		helpers[i].fill = &fill;
		helpers[i].pages = pages + (i + 1) * SHMK_BATCH;
		INIT_WORK(&helpers[i].work, shmk_fill_work);
		queue_work(system_unbound_wq, &helpers[i].work);
	}
	shmk_fill_run(&fill, pages, true);
	/* A worker that has not started by now has nothing left to do. */
	for (i = 0; i < nr_helpers; i++)
		cancel_work_sync(&helpers[i].work);
	if (nr_helpers) {
		put_cred(fill.cred);
		mem_cgroup_put(fill.memcg);
	}
	kfree(helpers);
	kvfree(pages);
	ret = atomic_read(&fill.error);
	/* shmem says -ENOSPC when the memory commit limit is reached. */
	return ret == -ENOSPC ? -ENOMEM : ret;
}

/**
 * shmk_segment_cut - unmap and free a range at the end of the segment
 * @seg: the segment; the caller holds seg->lock (or owns @seg alone)
 * @peers: its clients' address spaces, or NULL when it has none
 * @from: new active size
 * @to: old active size
 */
void shmk_segment_cut(struct shmk_segment *seg, struct shmk_peers *peers,
		      u64 from, u64 to)
{
	struct inode *inode = file_inode(seg->shm);

	/*
	 * Faults beyond the new size now raise SIGBUS, and ->mmap maps
	 * nothing beyond it; wait for those that read the old size.
	 */
	down_write(&seg->resize_sem);
	i_size_write(inode, from);
	up_write(&seg->resize_sem);
	if (peers)
		shmk_peers_sync_mmap(peers);
	/* Unmap from every client at once, then free the pages. */
	unmap_mapping_range(seg->shm->f_mapping, from, to - from, 1);
	shmem_truncate_range(inode, from, to - 1);
}

static void shmk_resized(struct shmk_segment *seg, u64 size)
{
	u64 old = seg->size;

	WRITE_ONCE(seg->size, size);
	seg->generation++;
	shmk_status_update(seg);
	shmk_event_resize(seg, size > old ? SHMK_CMD_SEGMENT_GROWN :
			  SHMK_CMD_SEGMENT_SHRUNK, old, size);
}

static void shmk_report(struct shmk_segment *seg, struct shmk_resize *rs,
			u64 old)
{
	rs->old_size = old;
	rs->new_size = seg->size;
	rs->generation = seg->generation;
}

/**
 * shmk_segment_grow - SHMK_IOC_GROW
 * @seg: the segment
 * @rs: the validated request; its results are filled in
 */
int shmk_segment_grow(struct shmk_segment *seg, struct shmk_resize *rs)
{
	bool lazy = rs->flags & SHMK_GROW_LAZY;
	struct shmk_peers *peers = NULL;
	u64 old, size = rs->size;
	unsigned long nr;
	int ret = 0;

	mutex_lock(&seg->lock);
	old = seg->size;
	if (size <= old)
		goto out;
	if (size > seg->max_size) {
		ret = -EFBIG;
		goto out;
	}
	nr = (size - old) >> PAGE_SHIFT;
	if (atomic_long_add_return(nr, &shmk_nr_pages) >
	    READ_ONCE(shmk_max_pages)) {
		atomic_long_sub(nr, &shmk_nr_pages);
		ret = -ENOSPC;
		goto out;
	}
	peers = shmk_peers_get(seg);
	if (!peers) {
		atomic_long_sub(nr, &shmk_nr_pages);
		ret = -ENOMEM;
		goto out;
	}

	i_size_write(file_inode(seg->shm), size);
	if (!lazy) {
		ret = shmk_segment_populate(seg, peers, old >> PAGE_SHIFT,
					    size >> PAGE_SHIFT);
		if (ret) {
			shmk_segment_cut(seg, peers, old, size);
			atomic_long_sub(nr, &shmk_nr_pages);
			goto out;
		}
	}
	shmk_resized(seg, size);
out:
	shmk_report(seg, rs, old);
	mutex_unlock(&seg->lock);
	if (peers)
		shmk_peers_put(peers);
	return ret;
}

/**
 * shmk_segment_shrink - SHMK_IOC_SHRINK
 * @seg: the segment
 * @rs: the validated request; its results are filled in
 */
int shmk_segment_shrink(struct shmk_segment *seg, struct shmk_resize *rs)
{
	struct shmk_peers *peers = NULL;
	int ret = 0;
	u64 old;

	mutex_lock(&seg->lock);
	old = seg->size;
	if (rs->size < old) {
		peers = shmk_peers_get(seg);
		if (!peers) {
			ret = -ENOMEM;
			goto out;
		}
		shmk_segment_cut(seg, peers, rs->size, old);
		atomic_long_sub((old - rs->size) >> PAGE_SHIFT, &shmk_nr_pages);
		shmk_resized(seg, rs->size);
	}
out:
	shmk_report(seg, rs, old);
	mutex_unlock(&seg->lock);
	if (peers)
		shmk_peers_put(peers);
	return ret;
}

/* Map the pages already present in [vma start, active size). */
static void shmk_populate_vma(struct vm_area_struct *vma)
{
	struct address_space *mapping = vma->vm_file->f_mapping;
	pgoff_t end = min(vma->vm_pgoff + vma_pages(vma),
			  shmk_active_pages(mapping));
	pgoff_t idx = vma->vm_pgoff;
	struct page *pages[32];

	while (idx < end) {
		pgoff_t start = idx;
		unsigned int nr = 0;

		/* A run of present pages; a lazily grown hole ends it. */
		while (idx < end && nr < ARRAY_SIZE(pages)) {
			struct page *page = find_get_page(mapping, idx++);

			if (!page)
				break;
			pages[nr++] = page;
		}
		if (nr)
			shmk_insert(vma, start, pages, nr);
		while (nr)
			put_page(pages[--nr]);
	}
}

static vm_fault_t shmk_fault(struct vm_fault *vmf)
{
	struct shmk_client *client = vmf->vma->vm_file->private_data;
	struct address_space *mapping = vmf->vma->vm_file->f_mapping;
	struct page *page;

	if (vmf->pgoff >= shmk_active_pages(mapping) ||
	    READ_ONCE(client->kicked))
		return VM_FAULT_SIGBUS;

	/* A lazily grown page: allocate it now, charged to this process. */
	page = shmem_read_mapping_page_gfp(mapping, vmf->pgoff,
					   shmk_gfp(mapping));
	if (IS_ERR(page))
		return PTR_ERR(page) == -ENOMEM ? VM_FAULT_OOM :
						  VM_FAULT_SIGBUS;
	lock_page(page);
	/* Lost a race with a shrink: fault again, which sees the new size. */
	if (page->mapping != mapping) {
		unlock_page(page);
		put_page(page);
		return VM_FAULT_NOPAGE;
	}
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static const struct vm_operations_struct shmk_vm_ops = {
	.fault		= shmk_fault,
};

static vm_fault_t shmk_status_fault(struct vm_fault *vmf)
{
	struct shmk_client *client = vmf->vma->vm_file->private_data;
	struct page *page = client->seg->status_page;

	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct shmk_status_vm_ops = {
	.fault		= shmk_status_fault,
};

static int shmk_mmap_status(struct vm_area_struct *vma)
{
	if (vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EACCES;
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY | VM_DONTDUMP);
	vma->vm_ops = &shmk_status_vm_ops;
	return 0;
}

/**
 * shmk_mmap - ->mmap of a client handle
 * @file: the client handle
 * @vma: the new mapping
 *
 * Offset 0 up to the maximum size maps the segment; the active part is
 * mapped at once. SHMK_STATUS_OFFSET maps the status page.
 */
int shmk_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct shmk_client *client = file->private_data;
	struct shmk_segment *seg = client->seg;
	pgoff_t max_pages = seg->max_size >> PAGE_SHIFT;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (READ_ONCE(client->kicked))
		return -ENOTCONN;
	if (vma->vm_mm != client->mm)
		return -EPERM;
	if (vma->vm_pgoff == SHMK_STATUS_OFFSET >> PAGE_SHIFT)
		return shmk_mmap_status(vma);
	if (vma->vm_pgoff >= max_pages ||
	    vma_pages(vma) > max_pages - vma->vm_pgoff)
		return -EINVAL;
	if (client->flags & SHMK_CLIENT_RDONLY) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	/*
	 * VM_MIXEDMAP lets peer mapping insert pages holding only the mmap
	 * read lock. Growth never moves the mapping (VM_DONTEXPAND), and a
	 * child process attaches for itself (VM_DONTCOPY).
	 */
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTCOPY);
	vma->vm_ops = &shmk_vm_ops;

	if (!vma->vm_pgoff) {
		cmpxchg(&client->base_addr, 0, vma->vm_start);
		shmk_status_set_base(seg, vma->vm_start);
	}

	down_read(&seg->resize_sem);
	shmk_populate_vma(vma);
	up_read(&seg->resize_sem);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping segments, and peer mapping.
 *
 * A client maps its handle; ->mmap turns that into an ordinary shared
 * mapping of the segment's shmem file (vma_set_file()), so the pages come
 * from shmem's own fault path, with its rmap, futex keys, memory cgroup
 * charging and reclaim. shmk wraps shmem's vm_operations to keep the client
 * handle referenced by each of its mappings and to refuse faults from a
 * kicked client or from a process that is not the client (a child that
 * inherited a mapping after MADV_DOFORK).
 *
 * Peer mapping: a grow allocates the new pages, then drives the standard
 * fault path in every client's address space (get_user_pages_remote()
 * without a pages array, as MADV_POPULATE_READ does for its own process;
 * a read fault on a writable shared shmem mapping installs writable PTEs,
 * and fault-around maps up to fault_around_bytes per fault). A client whose
 * mmap lock is busy is skipped: it takes faults on the new pages instead,
 * and no peer can stall a grow.
 *
 * On the huge page mount (shmfs.c) a grow's batch of 512 pages is one
 * 2 MiB folio wherever memory allows, and that fault path maps it into a
 * 2 MiB-aligned mapping with one PMD entry (do_set_pmd()): one call per
 * peer per 2 MiB. Where the folio is small, fault-around maps the batch's
 * page table in one go instead (shmk_map_pages()).
 *
 * A shrink lowers i_size and unmaps and frees the cut range. A load from
 * user mode there then maps one of two pages of the segment's own instead
 * of raising SIGBUS (shmk_fault_hole()), so that lock-free readers that
 * still hold an offset there retry rather than die; the next grow unmaps
 * those before it installs the new pages.
 */
#include <linux/cgroup.h>
#include <linux/cpumask.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/memcontrol.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
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
/*
 * The mappings of one client that a grow populates (and eight times as many
 * VMAs that it looks at between them): a process that maps the segment many
 * times over, or fills the range with other mappings, takes faults on the
 * rest, rather than making every grow walk them all under the segment lock.
 */
#define SHMK_MAX_PEER_VMAS	8
/* The most CPUs one grow fills pages on, whatever grow_threads says. */
#define SHMK_MAX_GROW_THREADS	16U

static const struct vm_operations_struct shmk_vm_ops;
static const struct vm_operations_struct shmk_status_vm_ops;

/*
 * shmem's vm_operations for file mappings, learnt from the first mapping
 * (shmem_mmap() always installs the same ones). Set before any VMA that
 * uses shmk_vm_ops exists.
 */
static const struct vm_operations_struct *shmk_shmem_vm_ops;

/*
 * The segment's shmem file gets a copy of shmem's file_operations whose
 * ->mmap refuses every caller but shmk_mmap(). A client's VMA has that file
 * as vm_file, and remap_file_pages() calls do_mmap() on a VMA's file: it
 * would otherwise make a plain shmem mapping of the segment, without
 * shmk's vm_operations (kicks, fork, the client reference and the charges
 * it keeps alive). The original is put back before the file is released,
 * so that nothing refers to the module's copy once the segment is gone.
 */
static const struct file_operations *shmk_shmem_fops;
static const struct file_operations *shmk_shm_fops;	/* a modified copy */

static int shmk_shm_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* shmk_mmap() calls here before it moves the VMA to this file. */
	if (!vma->vm_file || vma->vm_file->f_op != &shmk_client_fops)
		return -EPERM;
	return shmk_shmem_fops->mmap(file, vma);
}

/* Learn shmem's file_operations from a file of its own; at module load. */
int shmk_mmap_init(void)
{
	int (*mmap)(struct file *file, struct vm_area_struct *vma);
	struct file *probe;
	void *copy;

	probe = shmk_shmfs_file("shmk:probe", true);
	if (IS_ERR(probe))
		return PTR_ERR(probe);
	shmk_shmem_fops = probe->f_op;
	fput(probe);
	copy = kmemdup(shmk_shmem_fops, sizeof(*shmk_shmem_fops), GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	mmap = shmk_shm_mmap;
	memcpy(copy + offsetof(typeof(*shmk_shmem_fops), mmap), &mmap,
	       sizeof(mmap));
	/*
	 * shmem_get_unmapped_area() asserts that the file's f_op is shmem's
	 * own (VM_BUG_ON); placement then falls back to the mm's default.
	 */
	memset(copy + offsetof(typeof(*shmk_shmem_fops), get_unmapped_area),
	       0, sizeof(shmk_shmem_fops->get_unmapped_area));
	shmk_shm_fops = copy;
	return 0;
}

/* At module unload: every segment, and so every guarded file, is gone. */
void shmk_mmap_exit(void)
{
	kfree(shmk_shm_fops);
}

/* Give a new segment file the guarded operations. */
void shmk_shm_guard(struct file *shm)
{
	WRITE_ONCE(shm->f_op, shmk_shm_fops);
}

/*
 * Put shmem's own operations back, before the segment drops its reference:
 * the last fput() may come later, from a dying VMA, after module unload.
 */
void shmk_shm_unguard(struct file *shm)
{
	WRITE_ONCE(shm->f_op, shmk_shmem_fops);
}

static gfp_t shmk_gfp(struct address_space *mapping)
{
	return mapping_gfp_mask(mapping) | __GFP_NOWARN | __GFP_RETRY_MAYFAIL;
}

/*
 * Whether faults in @vma may map the segment: the client was not kicked and
 * the mapping is in the client's own address space.
 */
static bool shmk_vma_usable(const struct vm_area_struct *vma)
{
	const struct shmk_client *client = vma->vm_private_data;

	return vma->vm_mm == client->mm && !READ_ONCE(client->kicked);
}

/**
 * shmk_peers_get - pin the address space of every attached client
 * @seg: the segment, its lock held
 *
 * Kicked and exiting clients are left out. The clients themselves stay
 * alive while seg->lock is held (a client leaves the registry under it).
 * The caller drops the pins with shmk_peers_put() after releasing
 * seg->lock, so that a peer's exit_mmap() never runs under it. Returns
 * NULL when out of memory.
 */
struct shmk_peers *shmk_peers_get(struct shmk_segment *seg)
{
	struct shmk_client *client;
	struct shmk_peers *peers;

	lockdep_assert_held(&seg->lock);
	peers = kmalloc(struct_size(peers, peer, seg->nr_clients), GFP_KERNEL);
	if (!peers)
		return NULL;
	peers->nr = 0;
	list_for_each_entry(client, &seg->clients, node) {
		if (READ_ONCE(client->kicked) || !mmget_not_zero(client->mm))
			continue;
		peers->peer[peers->nr].client = client;
		peers->peer[peers->nr].mm = client->mm;
		peers->nr++;
	}
	return peers;
}

void shmk_peers_put(struct shmk_peers *peers)
{
	while (peers->nr)
		mmput(peers->peer[--peers->nr].mm);
	kfree(peers);
}

/*
 * Map pages [@first, @last) of the segment into @vma, as far as it maps
 * them, one page table at a time. Where the range covers a whole page table
 * (a 2 MiB-aligned mapping, as libshmk makes, and a grow's batches, which
 * are 512 pages aligned), one fault on its first page is enough:
 * fault-around (shmk_map_pages()) maps every present page of that table. A
 * partial table is walked page by page, so that pages another batch faulted
 * in already do not hide the new ones. The pages must be in the page cache,
 * as a grow's are.
 */
static void shmk_populate_vma(struct vm_area_struct *vma, pgoff_t first,
			      pgoff_t last)
{
	pgoff_t start = max(first, vma->vm_pgoff);
	pgoff_t end = min(last, vma->vm_pgoff + vma_pages(vma));
	unsigned long addr, next, stop;

	if (start >= end)
		return;
	addr = vma->vm_start + ((start - vma->vm_pgoff) << PAGE_SHIFT);
	stop = vma->vm_start + ((end - vma->vm_pgoff) << PAGE_SHIFT);
	/*
	 * Read faults: on a writable shared shmem mapping they install
	 * writable PTEs (shmem does no dirty tracking). A page that fault-
	 * around skips (locked by someone at that moment) or a page table
	 * that cannot be allocated leaves the peer an ordinary fault later;
	 * nothing is lost.
	 */
	for (; addr < stop; addr = next) {
		next = pmd_addr_end(addr, stop);
		if (!(addr & ~PMD_MASK) && next - addr == PMD_SIZE)
			shmk_gup_remote(vma->vm_mm, addr, 1, 0);
		else
			shmk_gup_remote(vma->vm_mm, addr,
					(next - addr) >> PAGE_SHIFT, 0);
	}
}

/*
 * Install pages [@first, @last) into each mapping of the segment that
 * @client made. Its mappings all lie within [map_lo, map_hi), which ->mmap
 * and ->open keep up to date under the client's mmap lock, so only that
 * part of the address space is walked, however many VMAs the process has.
 * Called with seg->lock held, which keeps @client alive.
 */
static void shmk_map_into_client(struct shmk_client *client, pgoff_t first,
				 pgoff_t last)
{
	struct mm_struct *mm = client->mm;
	struct vm_area_struct *vma;
	unsigned int n = 0, seen = 0;

	/* A peer that holds or waits for its mmap lock faults instead. */
	if (!mmap_read_trylock(mm))
		return;
	if (client->map_lo < client->map_hi) {
		VMA_ITERATOR(vmi, mm, client->map_lo);

		for_each_vma_range(vmi, vma, client->map_hi) {
			if (++seen > 8 * SHMK_MAX_PEER_VMAS)
				break;
			if (vma->vm_ops != &shmk_vm_ops ||
			    vma->vm_private_data != client ||
			    !shmk_vma_usable(vma))
				continue;
			shmk_populate_vma(vma, first, last);
			if (++n == SHMK_MAX_PEER_VMAS)
				break;
		}
	}
	mmap_read_unlock(mm);
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
	struct folio **folios;
};

/*
 * Allocate pages [@first, @first + @nr) and install them in every peer. On
 * the huge page mount a batch is one 2 MiB folio, where memory allows: its
 * first page allocates and clears all of it, and it is looked up once.
 */
static int shmk_fill_batch(struct shmk_fill *fill, struct folio **folios,
			   pgoff_t first, unsigned long nr)
{
	struct address_space *mapping = fill->seg->shm->f_mapping;
	gfp_t gfp = shmk_gfp(mapping);
	unsigned long i = 0, n = 0;
	unsigned int p;
	int ret = 0;

	while (i < nr) {
		struct folio *folio;
		struct page *page;

		page = shmem_read_mapping_page_gfp(mapping, first + i, gfp);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}
		folio = page_folio(page);
		folios[n++] = folio;
		i = folio_next_index(folio) - first;
	}
	/* The references keep reclaim off the pages until they are mapped. */
	for (p = 0; !ret && fill->peers && p < fill->peers->nr; p++)
		shmk_map_into_client(fill->peers->peer[p].client, first,
				     first + nr);
	while (n)
		folio_put(folios[--n]);
	return ret;
}

/* Fill batches until none is left or a participant failed. */
static void shmk_fill_run(struct shmk_fill *fill, struct folio **folios,
			  bool caller)
{
	while (!atomic_read(&fill->error)) {
		pgoff_t start = atomic_long_fetch_add(SHMK_BATCH, &fill->next);
		pgoff_t first = max(start, fill->first);
		pgoff_t end = min_t(pgoff_t, start + SHMK_BATCH, fill->last);
		int ret;

		if (first >= end)
			break;
		ret = shmk_fill_batch(fill, folios, first, end - first);
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

	shmk_fill_run(fill, w->folios, false);
	set_active_memcg(old_memcg);
	revert_creds(old_cred);
}

/*
 * Whether the caller is confined in a way that workers would escape: a CPU
 * affinity or cpuset narrower than the online CPUs, a memory policy or
 * cpuset memory nodes (shmem allocates by the task's policy), or a CPU
 * cgroup other than the root, whose bandwidth limits kworkers do not obey.
 * A confined caller fills every page itself.
 */
static bool shmk_caller_confined(void)
{
	bool confined = false;

	if (!cpumask_subset(cpu_online_mask, current->cpus_ptr))
		return true;
#ifdef CONFIG_NUMA
	if (current->mempolicy)
		return true;
#endif
#ifdef CONFIG_CPUSETS
	if (!nodes_subset(node_states[N_MEMORY], current->mems_allowed))
		return true;
#endif
#ifdef CONFIG_CGROUP_SCHED
	rcu_read_lock();
	confined = task_css(current, cpu_cgrp_id)->parent;
	rcu_read_unlock();
#endif
	return confined;
}

/* How many workers should help fill @nr_batches batches. */
static unsigned int shmk_fill_helpers(unsigned long nr_batches)
{
	unsigned int threads = READ_ONCE(shmk_grow_threads);

	if (shmk_caller_confined())
		return 0;
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
 * unbound workqueue, which it waits for. When the workers cannot be set up,
 * or the caller is confined (see shmk_caller_confined()), the caller does
 * all of it. Pages are charged to the caller's memory cgroup. On error,
 * pages already allocated stay in the page cache: the caller cuts the range.
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
	struct folio **folios;
	int ret;

	if (first >= last)
		return 0;
	nr_helpers = shmk_fill_helpers(DIV_ROUND_UP(last, SHMK_BATCH) -
				       first / SHMK_BATCH);
	if (nr_helpers)
		helpers = kcalloc(nr_helpers, sizeof(*helpers), GFP_KERNEL);
	if (!helpers)
		nr_helpers = 0;
	folios = kvmalloc_array((nr_helpers + 1) * SHMK_BATCH,
				sizeof(*folios), GFP_KERNEL);
	if (!folios) {
		kfree(helpers);
		return -ENOMEM;
	}

	if (nr_helpers) {
		fill.memcg = get_mem_cgroup_from_mm(current->mm);
		fill.cred = get_current_cred();
	}
	for (i = 0; i < nr_helpers; i++) {
		helpers[i].fill = &fill;
		helpers[i].folios = folios + (i + 1) * SHMK_BATCH;
		INIT_WORK(&helpers[i].work, shmk_fill_work);
		queue_work(system_unbound_wq, &helpers[i].work);
	}
	shmk_fill_run(&fill, folios, true);
	/* A worker that has not started by now has nothing left to do. */
	for (i = 0; i < nr_helpers; i++)
		cancel_work_sync(&helpers[i].work);
	if (nr_helpers) {
		put_cred(fill.cred);
		mem_cgroup_put(fill.memcg);
	}
	kfree(helpers);
	kvfree(folios);
	ret = atomic_read(&fill.error);
	/* shmem says -ENOSPC when the memory commit limit is reached. */
	return ret == -ENOSPC ? -ENOMEM : ret;
}

/**
 * shmk_segment_cut - unmap and free a range at the end of the segment
 * @seg: the segment; the caller holds seg->lock (or owns @seg alone)
 * @from: new active size
 * @to: old active size
 *
 * Faults beyond the new size raise SIGBUS from the moment i_size drops,
 * loads excepted (shmk_fault_hole()); shmem's truncation then unmaps the
 * range from every client and frees it, with the page locks ordering it
 * against faults in flight.
 */
void shmk_segment_cut(struct shmk_segment *seg, u64 from, u64 to)
{
	struct inode *inode = file_inode(seg->shm);

	WRITE_ONCE(seg->resize_seq, seg->resize_seq + 1);
	smp_wmb();	/* before i_size: see shmk_fault() */
	i_size_write(inode, from);
	unmap_mapping_range(seg->shm->f_mapping, from, to - from, 1);
	shmem_truncate_range(inode, from, to - 1);
}

/**
 * shmk_segment_huge_size - how much of a range is in 2 MiB pages
 * @seg: the segment; the caller holds a reference (not its lock)
 * @size: the length to look at from offset 0, the active size as read
 *
 * Walks the page cache: 128 entries per 256 MiB where the segment is huge,
 * one per page where it is not. Runs without seg->lock, so that a client
 * asking for it (any client may) never holds up a grow or a shrink; under
 * RCU, with a reschedule every XA_CHECK_SCHED entries. A figure for INFO: a
 * folio split, freed or added meanwhile may or may not be counted.
 */
u64 shmk_segment_huge_size(struct shmk_segment *seg, u64 size)
{
	XA_STATE(xas, &seg->shm->f_mapping->i_pages, 0);
	pgoff_t end = size >> PAGE_SHIFT;
	unsigned long nr = 0, seen = 0;
	struct folio *folio;

	if (!end || !shmk_shmfs_is_huge(seg->shm))
		return 0;
	rcu_read_lock();
	xas_for_each(&xas, folio, end - 1) {
		if (xas_retry(&xas, folio) || xa_is_value(folio))
			continue;
		if (folio_test_pmd_mappable(folio))
			nr += folio_nr_pages(folio);
		if (++seen % XA_CHECK_SCHED)
			continue;
		xas_pause(&xas);
		rcu_read_unlock();
		cond_resched();
		rcu_read_lock();
	}
	rcu_read_unlock();
	return (u64)nr << PAGE_SHIFT;
}

static void shmk_resized(struct shmk_segment *seg, u64 size)
{
	u64 old = seg->size;

	WRITE_ONCE(seg->size, size);
	if (size > seg->high_size)
		WRITE_ONCE(seg->high_size, size);
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
	bool zap;
	u64 old, size = rs->size;
	unsigned long nr;
	int ret;

	ret = mutex_lock_killable(&seg->lock);
	if (ret)
		return ret;
	old = seg->size;
	if (size <= old)
		goto out;
	if (size > seg->max_size) {
		ret = -EFBIG;
		goto out;
	}
	nr = (size - old) >> PAGE_SHIFT;
	ret = shmk_charge_pages(seg, nr);
	if (ret)
		goto out;
	peers = shmk_peers_get(seg);
	if (!peers) {
		shmk_uncharge_pages(seg, nr);
		ret = -ENOMEM;
		goto out;
	}

	/*
	 * Faults that map the hole or the scratch page below the new size
	 * hold its lock from before they look at i_size until the page is
	 * mapped: unmap them (they all lie in [old, high_size)) before the
	 * new pages go in. Later ones see the new size.
	 */
	lock_page(seg->hole_page);
	lock_page(seg->scratch_page);
	WRITE_ONCE(seg->resize_seq, seg->resize_seq + 1);
	smp_wmb();	/* before i_size: see shmk_fault() */
	i_size_write(file_inode(seg->shm), size);
	zap = seg->holes_mapped;
	seg->holes_mapped = false;
	unlock_page(seg->scratch_page);
	unlock_page(seg->hole_page);
	if (zap) {
		if (seg->high_size > old)
			unmap_mapping_range(seg->shm->f_mapping, old,
					    seg->high_size - old, 1);
		/*
		 * No mapping of the scratch page is left unless a fault made
		 * one since (and said so under its lock): start it over from
		 * zeros. Without zap, nothing mapped it since the last clear.
		 */
		lock_page(seg->scratch_page);
		if (!READ_ONCE(seg->holes_mapped))
			clear_highpage(seg->scratch_page);
		unlock_page(seg->scratch_page);
	}
	if (!lazy) {
		ret = shmk_segment_populate(seg, peers, old >> PAGE_SHIFT,
					    size >> PAGE_SHIFT);
		if (ret) {
			shmk_segment_cut(seg, old, size);
			shmk_uncharge_pages(seg, nr);
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
	u64 old;
	int ret;

	ret = mutex_lock_killable(&seg->lock);
	if (ret)
		return ret;
	old = seg->size;
	if (rs->size < old) {
		shmk_segment_cut(seg, rs->size, old);
		shmk_uncharge_pages(seg, (old - rs->size) >> PAGE_SHIFT);
		shmk_resized(seg, rs->size);
	}
	shmk_report(seg, rs, old);
	mutex_unlock(&seg->lock);
	return 0;
}

/**
 * shmk_evict_mm - unmap a kicked client's mappings from its process
 * @seg: the client's segment
 * @mm: the client's address space, pinned by the caller
 * @client: the client, already marked kicked (only its address is used)
 *
 * Faults check the kicked mark before they map a page. Taking the mmap lock
 * for writing (and, where faults run under per-VMA locks, each VMA's write
 * lock) waits for the faults that began before the mark, so that once the
 * mappings are zapped, none of them can map a page again.
 *
 * Returns 0, or -EINTR when a fatal signal interrupted the wait; then the
 * whole segment is unmapped from every client instead (the others fault
 * their pages back in), which leaves the kicked client only a fault that
 * was in flight at that moment, and its status page. The kick itself has
 * taken effect either way.
 */
int shmk_evict_mm(struct shmk_segment *seg, struct mm_struct *mm,
		  const struct shmk_client *client)
{
	struct vm_area_struct *vma;
	int ret;

	ret = mmap_write_lock_killable(mm);
	if (ret) {
		unmap_mapping_range(seg->shm->f_mapping, 0, seg->max_size, 1);
		return ret;
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			bool mine;

			/* Its segment mappings, and its status page. */
			if (vma->vm_ops == &shmk_vm_ops)
				mine = vma->vm_private_data == client;
			else if (vma->vm_ops == &shmk_status_vm_ops)
				mine = vma->vm_file->private_data == client;
			else
				mine = false;
			if (!mine)
				continue;
			vma_start_write(vma);
			shmk_zap_vma(vma);
			cond_resched();
		}
	}
	mmap_write_unlock(mm);
	return 0;
}

/*
 * A load at @vmf->pgoff, beyond the segment's i_size when the caller
 * looked: a page of the segment's own there when a shrink cut that range
 * off (it lies below high_size), else SIGBUS. A mapping that can never
 * write gets the hole page, which stays zero; one that may write gets the
 * scratch page, writable as shmem's pages are after a read fault, so that
 * what a writer stores through a stale pointer reaches neither read-only
 * clients nor a later grow's pages (a grow clears it when it is no longer
 * mapped). The page goes back locked, and the fault path installs it
 * before it unlocks it; a grow raises i_size under the same lock. So either
 * the grow comes first (this fault then retries and finds the new page) or
 * the page is mapped before the grow unmaps it again (see
 * shmk_segment_grow()).
 */
static vm_fault_t shmk_fault_hole(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct shmk_client *client = vma->vm_private_data;
	struct shmk_segment *seg = client->seg;
	loff_t pos = (loff_t)vmf->pgoff << PAGE_SHIFT;
	struct page *page;

	if (pos >= READ_ONCE(seg->high_size))
		return VM_FAULT_SIGBUS;
	page = vma->vm_flags & VM_MAYWRITE ? seg->scratch_page :
					     seg->hole_page;
	lock_page(page);
	if (pos < i_size_read(file_inode(seg->shm))) {
		unlock_page(page);
		return VM_FAULT_NOPAGE;		/* grown meanwhile: retry */
	}
	/*
	 * A poisoned page would send __do_fault() to unmap it through its
	 * (absent) mapping (memory_failure() does not take the page lock, so
	 * poison that arrives right after this check still could); and each
	 * mapping takes a reference, which must not be allowed to overflow.
	 */
	if (PageHWPoison(page) || page_ref_count(page) > INT_MAX / 2) {
		unlock_page(page);
		return VM_FAULT_SIGBUS;
	}
	WRITE_ONCE(seg->holes_mapped, true);
	get_page(page);
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static vm_fault_t shmk_fault(struct vm_fault *vmf)
{
	struct shmk_client *client = vmf->vma->vm_private_data;
	struct shmk_segment *seg = client->seg;
	struct inode *inode = file_inode(seg->shm);
	loff_t pos = (loff_t)vmf->pgoff << PAGE_SHIFT;
	/*
	 * Only loads from user mode may map the hole page: get_user_pages()
	 * (MAP_POPULATE, MADV_POPULATE_READ, a system call's access to the
	 * range) fails there as before, rather than filling the cut range
	 * with mappings that the next grow has to take down again.
	 */
	bool load = (vmf->flags & (FAULT_FLAG_WRITE | FAULT_FLAG_USER)) ==
		    FAULT_FLAG_USER;
	unsigned long seq;
	vm_fault_t ret;

	if (!shmk_vma_usable(vmf->vma))
		return VM_FAULT_SIGBUS;
	seq = READ_ONCE(seg->resize_seq);
	smp_rmb();	/* pairs with the resizes' smp_wmb() */
	if (load && pos >= i_size_read(inode))
		return shmk_fault_hole(vmf);
	ret = shmk_shmem_vm_ops->fault(vmf);
	if (ret != VM_FAULT_SIGBUS || !load)
		return ret;
	/*
	 * A shrink lowered i_size since: the hole, or, when a grow raised
	 * it again meanwhile, another try.
	 */
	if (pos >= i_size_read(inode))
		return shmk_fault_hole(vmf);
	smp_rmb();	/* i_size raised again: so was resize_seq, before */
	return READ_ONCE(seg->resize_seq) != seq ? VM_FAULT_NOPAGE : ret;
}

/*
 * Fault-around: map the present pages of the whole page table around the
 * fault (up to 512 pages on x86-64), not only fault_around_bytes' worth.
 * The segment's pages are there to be shared, and peer mapping drives this
 * path for every batch of a grow, so one fault per page table instead of one
 * per 16 pages. The range must stay within the page table that vmf->pmd
 * points to, and within the VMA.
 */
static vm_fault_t shmk_map_pages(struct vm_fault *vmf, pgoff_t start_pgoff,
				 pgoff_t end_pgoff)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long lo, hi;

	/* Map nothing around; ->fault then refuses the faulting address. */
	if (!shmk_vma_usable(vma) || !shmk_shmem_vm_ops->map_pages)
		return 0;
	lo = max(vmf->address & PMD_MASK, vma->vm_start);
	hi = min((vmf->address & PMD_MASK) + PMD_SIZE, vma->vm_end);
	start_pgoff = min(start_pgoff, linear_page_index(vma, lo));
	end_pgoff = max(end_pgoff, linear_page_index(vma, hi) - 1);
	return shmk_shmem_vm_ops->map_pages(vmf, start_pgoff, end_pgoff);
}

/*
 * Widen the client's [map_lo, map_hi) to cover @vma. Called under the mmap
 * lock (write) of the client's process; mappings in other processes (a
 * child after MADV_DOFORK) are never populated, so they are not tracked.
 */
static void shmk_track_vma(struct shmk_client *client,
			   struct vm_area_struct *vma)
{
	if (vma->vm_mm != client->mm)
		return;
	if (client->map_lo >= client->map_hi) {
		client->map_lo = vma->vm_start;
		client->map_hi = vma->vm_end;
		return;
	}
	client->map_lo = min(client->map_lo, vma->vm_start);
	client->map_hi = max(client->map_hi, vma->vm_end);
}

/*
 * Each mapping holds a reference to its client handle, and so the client.
 * ->open runs for a mapping copied by a split, mremap() or fork().
 */
static void shmk_vm_open(struct vm_area_struct *vma)
{
	struct shmk_client *client = vma->vm_private_data;

	get_file(client->file);
	shmk_track_vma(client, vma);
}

static void shmk_vm_close(struct vm_area_struct *vma)
{
	struct shmk_client *client = vma->vm_private_data;

	/* The release, if this was the last reference, runs later. */
	fput(client->file);
}

#ifdef CONFIG_NUMA
/* mbind() on a mapping sets the policy of the segment's pages, as on shmem. */
static int shmk_set_policy(struct vm_area_struct *vma, struct mempolicy *new)
{
	return shmk_shmem_vm_ops->set_policy(vma, new);
}

#ifdef HAVE_GET_POLICY_ILX
/* 6.7 added the interleave index to ->get_policy(). */
static struct mempolicy *shmk_get_policy(struct vm_area_struct *vma,
					 unsigned long addr, pgoff_t *ilx)
{
	return shmk_shmem_vm_ops->get_policy(vma, addr, ilx);
}
#else
static struct mempolicy *shmk_get_policy(struct vm_area_struct *vma,
					 unsigned long addr)
{
	return shmk_shmem_vm_ops->get_policy(vma, addr);
}
#endif
#endif

static const struct vm_operations_struct shmk_vm_ops = {
	.open		= shmk_vm_open,
	.close		= shmk_vm_close,
	.fault		= shmk_fault,
	.map_pages	= shmk_map_pages,
#ifdef CONFIG_NUMA
	.set_policy	= shmk_set_policy,
	.get_policy	= shmk_get_policy,
#endif
};

static vm_fault_t shmk_status_fault(struct vm_fault *vmf)
{
	struct shmk_client *client = vmf->vma->vm_file->private_data;
	struct shmk_status_view *view = vmf->vma->vm_private_data;

	/* Not after a kick, and not in a child that inherited the mapping. */
	if (READ_ONCE(client->kicked) || vmf->vma->vm_mm != client->mm)
		return VM_FAULT_SIGBUS;

	get_page(view->page);
	vmf->page = view->page;
	return 0;
}

static const struct vm_operations_struct shmk_status_vm_ops = {
	.fault		= shmk_status_fault,
};

static int shmk_mmap_status(struct shmk_client *client,
			    struct vm_area_struct *vma)
{
	if (vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EACCES;
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY | VM_DONTDUMP);
	/* Pids in it are in the pid namespace the client attached from. */
	vma->vm_private_data = client->view;
	vma->vm_ops = &shmk_status_vm_ops;
	return 0;
}

/**
 * shmk_mmap - ->mmap of a client handle
 * @file: the client handle
 * @vma: the new mapping
 *
 * Offset 0 up to the maximum size maps the segment: a shared mapping of
 * its shmem file, which maps nothing until it is faulted or populated
 * (MAP_POPULATE, MADV_POPULATE_READ/WRITE) and then receives every grow.
 * SHMK_STATUS_OFFSET maps the status page.
 */
int shmk_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct shmk_client *client = file->private_data;
	struct shmk_segment *seg = client->seg;
	pgoff_t max_pages = seg->max_size >> PAGE_SHIFT;
	int ret;

	/* A read-only handle's shared mapping lacks VM_SHARED, not VM_MAYSHARE. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (READ_ONCE(client->kicked))
		return -ENOTCONN;
	if (vma->vm_mm != client->mm)
		return -EPERM;
	if (vma->vm_pgoff == SHMK_STATUS_OFFSET >> PAGE_SHIFT)
		return shmk_mmap_status(client, vma);
	if (vma->vm_pgoff >= max_pages ||
	    vma_pages(vma) > max_pages - vma->vm_pgoff)
		return -EINVAL;
	/* A reader's handle is O_RDONLY: mmap() already refused PROT_WRITE. */
	if ((client->flags & SHMK_CLIENT_RDONLY) &&
	    (vma->vm_flags & VM_MAYWRITE))
		return -EACCES;

	ret = call_mmap(seg->shm, vma);
	if (ret)
		return ret;
	WRITE_ONCE(shmk_shmem_vm_ops, vma->vm_ops);
	vma_set_file(vma, seg->shm);
	get_file(file);		/* dropped by shmk_vm_close() */
	vma->vm_private_data = client;
	vma->vm_ops = &shmk_vm_ops;
	shmk_track_vma(client, vma);
	/*
	 * Growth never moves the mapping (VM_DONTEXPAND), and a child
	 * process attaches for itself (VM_DONTCOPY; one that inherits the
	 * mapping anyway after MADV_DOFORK gets SIGBUS from it).
	 * VM_DONTEXPAND, one of VM_SPECIAL, also keeps mmap_region() from
	 * merging the new VMA into a neighbour after ->mmap changed its
	 * flags, which would free it without ->close and leak the handle,
	 * and keeps khugepaged and MADV_COLLAPSE away (VM_NO_KHUGEPAGED):
	 * they install PMDs with set_huge_pmd(), not through shmk_fault(),
	 * so a kicked client or a MADV_DOFORK child could map the segment.
	 */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY);

	if (!vma->vm_pgoff) {
		cmpxchg(&client->base_addr, 0, vma->vm_start);
		shmk_status_set_base(seg, vma->vm_start);
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Clients: attaching a process to a segment, the client handle's ioctls and
 * the registry of attached clients.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>

#include "shmk.h"

#define SHMK_ATTACH_FLAGS	(SHMK_ATTACH_CREATE | SHMK_ATTACH_EXCL | \
				 SHMK_ATTACH_RDONLY | SHMK_ATTACH_WRITER | \
				 SHMK_ATTACH_SMALL_PAGES)

static bool shmk_zero(const void *p, size_t size)
{
	return !memchr_inv(p, 0, size);
}

static int shmk_check_attach(const struct shmk_attach *req)
{
	if (req->flags & ~SHMK_ATTACH_FLAGS)
		return -EINVAL;
	if ((req->flags & SHMK_ATTACH_RDONLY) &&
	    (req->flags & SHMK_ATTACH_WRITER))
		return -EINVAL;
	if ((req->flags & (SHMK_ATTACH_EXCL | SHMK_ATTACH_SMALL_PAGES)) &&
	    !(req->flags & SHMK_ATTACH_CREATE))
		return -EINVAL;
	if (!shmk_zero(req->reserved, sizeof(req->reserved)))
		return -EINVAL;
	if (shmk_check_name(req->name, sizeof(req->name), 0) ||
	    shmk_check_name(req->client_name, sizeof(req->client_name),
			    SHMK_NAME_EMPTY_OK | SHMK_NAME_SLASH_OK))
		return -EINVAL;
	return 0;
}

static struct shmk_client *shmk_client_alloc(const struct shmk_attach *req)
{
	struct shmk_client *client;

	client = kzalloc(sizeof(*client), GFP_KERNEL_ACCOUNT);
	if (!client)
		return NULL;
	INIT_LIST_HEAD(&client->node);
	if (req->flags & SHMK_ATTACH_RDONLY)
		client->flags |= SHMK_CLIENT_RDONLY;
	if (req->flags & SHMK_ATTACH_WRITER)
		client->flags |= SHMK_CLIENT_WRITER;
	if (req->client_name[0]) {
		strscpy(client->name, req->client_name, sizeof(client->name));
	} else {
		char comm[TASK_COMM_LEN];

		get_task_comm(comm, current);
		strscpy(client->name, comm, sizeof(client->name));
	}
	client->pid = get_task_pid(current, PIDTYPE_TGID);
	client->mm = current->mm;
	mmgrab(client->mm);
	client->attach_ns = ktime_get_real_ns();
	return client;
}

static void shmk_client_free(struct shmk_client *client)
{
	mmdrop(client->mm);
	put_pid(client->pid);
	kfree(client);
}

/* Add @client to @seg's registry. */
static int shmk_client_register(struct shmk_segment *seg,
				struct shmk_client *client)
{
	int ret = 0;

	mutex_lock(&seg->lock);
	if (!seg->linked)
		ret = -ENOENT;	/* unlinked since the lookup */
	else if (seg->nr_clients >= READ_ONCE(shmk_max_clients))
		ret = -EUSERS;
	else if ((client->flags & SHMK_CLIENT_WRITER) && seg->has_writer)
		ret = -EBUSY;
	if (!ret) {
		/* Its status page, with pids in its pid namespace. */
		client->view = shmk_status_view_get(seg);
		if (!client->view)
			ret = -ENOMEM;
	}
	if (!ret) {
		client->seg = seg;
		client->id = seg->next_client_id++;
		if (client->flags & SHMK_CLIENT_WRITER)
			seg->has_writer = true;
		list_add_tail(&client->node, &seg->clients);
		seg->nr_clients++;
		atomic_inc(&shmk_nr_clients);
		shmk_status_update(seg);
		shmk_event_client(seg, client, SHMK_CMD_CLIENT_ATTACHED, 0);
	}
	mutex_unlock(&seg->lock);
	return ret;
}

/* Remove @client from the registry, unless a kick did. Holds seg->lock. */
static void shmk_client_unlink(struct shmk_client *client, u32 reason)
{
	struct shmk_segment *seg = client->seg;

	lockdep_assert_held(&seg->lock);
	if (list_empty(&client->node))
		return;
	list_del_init(&client->node);
	seg->nr_clients--;
	if (client->flags & SHMK_CLIENT_WRITER)
		seg->has_writer = false;
	atomic_dec(&shmk_nr_clients);
	shmk_status_update(seg);
	shmk_event_client(seg, client, SHMK_CMD_CLIENT_DETACHED, reason);
}

/* The end of a registered client: its handle is released, or attach failed. */
static void shmk_client_unregister(struct shmk_client *client, u32 reason)
{
	struct shmk_segment *seg = client->seg;
	struct shmk_status_view *unused;

	mutex_lock(&seg->lock);
	shmk_client_unlink(client, reason);
	unused = shmk_status_view_put(seg, client->view);
	mutex_unlock(&seg->lock);
	if (unused)
		shmk_status_view_free(unused);
}

/* Why the last reference to a handle goes: closed, or its process ends. */
static u32 shmk_detach_reason(void)
{
	if (!(current->flags & PF_EXITING))
		return SHMK_DETACH_CLOSED;
	if (current->signal->group_exit_code & 0x7f)
		return SHMK_DETACH_KILLED;
	return SHMK_DETACH_EXITED;
}

static int shmk_client_release(struct inode *inode, struct file *file)
{
	struct shmk_client *client = file->private_data;
	struct shmk_segment *seg = client->seg;

	shmk_client_unregister(client, shmk_detach_reason());
	shmk_client_free(client);
	shmk_segment_put(seg);
	return 0;
}

/**
 * shmk_client_kick - detach a client on an administrator's request
 * @seg: its segment
 * @client_id: the client
 *
 * The client leaves the registry and the segment is unmapped from its
 * process, which gets SIGBUS on access; its handle answers -ENOTCONN.
 */
int shmk_client_kick(struct shmk_segment *seg, u32 client_id)
{
	struct mm_struct *mm = NULL;
	struct shmk_client *client;
	int ret = -ENOENT;

	ret = mutex_lock_killable(&seg->lock);
	if (ret)
		return ret;
	ret = -ENOENT;
	list_for_each_entry(client, &seg->clients, node) {
		if (client->id == client_id) {
			ret = 0;
			break;
		}
	}
	if (!ret) {
		/* From here on its faults and mmap() fail. */
		WRITE_ONCE(client->kicked, true);
		shmk_client_unlink(client, SHMK_DETACH_KICKED);
		if (mmget_not_zero(client->mm))
			mm = client->mm;
	}
	mutex_unlock(&seg->lock);
	/*
	 * The client may be freed from now on (its handle closed): only its
	 * address is used, to recognize its mappings. No segment lock is
	 * held while the kicked process's mmap lock is waited for.
	 */
	if (mm) {
		/* Interrupted, it evicted less, but the kick took effect. */
		shmk_evict_mm(seg, mm, client);
		mmput(mm);
	}
	return ret;
}

/**
 * shmk_ioctl_attach - SHMK_IOC_ATTACH on the control handle
 * @cmd: the command, whose size field gives the caller's struct size
 * @argp: user pointer to struct shmk_attach
 *
 * Returns a new client handle (file descriptor) or a negative errno.
 */
long shmk_ioctl_attach(unsigned int cmd, void __user *argp)
{
	char file_name[SHMK_NAME_MAX + 8];
	struct shmk_client *client;
	struct shmk_segment *seg;
	struct shmk_attach req;
	struct file *file;
	bool created;
	int fd, ret;

	ret = shmk_arg_in(&req, sizeof(req), cmd, argp);
	if (ret)
		return ret;
	ret = shmk_check_attach(&req);
	if (ret)
		return ret;
	if (!current->mm)
		return -EINVAL;

	client = shmk_client_alloc(&req);
	if (!client)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_client;
	}
	/*
	 * A segment can be unlinked between the lookup and the registration;
	 * with SHMK_ATTACH_CREATE, look again and create a new one.
	 */
	do {
		ret = shmk_segment_open(&req, &seg, &created);
		if (ret)
			goto err_fd;
		if (!created &&
		    !shmk_segment_may(seg, !(req.flags & SHMK_ATTACH_RDONLY)))
			ret = -EACCES;
		else
			ret = shmk_client_register(seg, client);
		if (ret) {
			if (created)
				shmk_segment_unlink_seg(seg);
			shmk_segment_put(seg);
		}
	} while (ret == -ENOENT && (req.flags & SHMK_ATTACH_CREATE) &&
		 !fatal_signal_pending(current));
	if (ret)
		goto err_fd;

	/*
	 * A reader's handle is opened read-only, so that mmap() itself
	 * refuses writable shared mappings and mprotect() cannot add write.
	 * The handle is an anonymous inode of its own: it is never made to
	 * look like the shmem file (file->f_mapping stays the anon inode's),
	 * so fcntl seals, fallocate, splice and the like refuse it.
	 */
	snprintf(file_name, sizeof(file_name), "[shmk:%s]", seg->name);
	file = anon_inode_getfile(file_name, &shmk_client_fops, client,
				  (client->flags & SHMK_CLIENT_RDONLY) ?
				  O_RDONLY : O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_unregister;
	}
	client->file = file;

	req.segment_id = seg->id;
	req.client_id = client->id;
	req.out_flags = created ? SHMK_ATTACH_CREATED : 0;
	if (shmk_arg_out(argp, &req, sizeof(req), cmd)) {
		/*
		 * A failed call creates nothing, as on the other error paths:
		 * unlink what this call created (the client's reference keeps
		 * it alive meanwhile). The release then unregisters the client
		 * and drops the segment.
		 */
		if (created)
			shmk_segment_unlink_seg(seg);
		fput(file);
		put_unused_fd(fd);
		return -EFAULT;
	}
	fd_install(fd, file);
	return fd;

err_unregister:
	shmk_client_unregister(client, SHMK_DETACH_CLOSED);
	if (created)
		shmk_segment_unlink_seg(seg);
	shmk_segment_put(seg);
err_fd:
	put_unused_fd(fd);
err_client:
	shmk_client_free(client);
	return ret;
}

static long shmk_ioctl_info(struct shmk_client *client, unsigned int cmd,
			    void __user *argp)
{
	struct shmk_segment *seg = client->seg;
	struct shmk_info info;
	int ret;

	ret = shmk_arg_in(&info, sizeof(info), cmd, argp);
	if (ret)
		return ret;
	if (info.flags || info.reserved0 || info.reserved1 ||
	    !shmk_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	mutex_lock(&seg->lock);
	info.segment_id = seg->id;
	info.size = seg->size;
	info.max_size = seg->max_size;
	info.generation = seg->generation;
	info.base_addr = READ_ONCE(seg->base_addr);
	info.ctime_ns = seg->ctime_ns;
	info.uid = from_kuid_munged(current_user_ns(), seg->uid);
	info.gid = from_kgid_munged(current_user_ns(), seg->gid);
	info.mode = seg->mode;
	info.nr_clients = seg->nr_clients;
	info.client_id = client->id;
	info.client_flags = client->flags;
	info.features = SHMK_FEATURES;
	memcpy(info.name, seg->name, sizeof(info.name));
	if (shmk_shmfs_is_huge(seg->shm))
		info.seg_flags |= SHMK_SEG_HUGE_PAGES;
	mutex_unlock(&seg->lock);
	/* Outside the lock: any client may ask, and grows must not wait. */
	info.huge_size = shmk_segment_huge_size(seg, info.size);

	return shmk_arg_out(argp, &info, sizeof(info), cmd);
}

static long shmk_ioctl_resize(struct shmk_client *client, unsigned int op,
			      unsigned int cmd, void __user *argp)
{
	struct shmk_segment *seg = client->seg;
	u32 allowed = op == SHMK_IOC_GROW ? SHMK_GROW_LAZY : 0;
	struct shmk_resize rs;
	int ret;

	ret = shmk_arg_in(&rs, sizeof(rs), cmd, argp);
	if (ret)
		return ret;
	if ((rs.flags & ~allowed) || rs.reserved0 ||
	    !shmk_zero(rs.reserved, sizeof(rs.reserved)))
		return -EINVAL;
	if (!PAGE_ALIGNED(rs.size))
		return -EINVAL;
	if (client->flags & SHMK_CLIENT_RDONLY)
		return -EPERM;

	if (op == SHMK_IOC_GROW)
		ret = shmk_segment_grow(seg, &rs);
	else
		ret = shmk_segment_shrink(seg, &rs);
	if (ret)
		return ret;
	return shmk_arg_out(argp, &rs, sizeof(rs), cmd);
}

static void shmk_fill_info(struct shmk_client_info *ci,
			   const struct shmk_client *client)
{
	memset(ci, 0, sizeof(*ci));
	ci->client_id = client->id;
	ci->pid = pid_vnr(client->pid);
	ci->flags = client->flags;
	memcpy(ci->name, client->name, sizeof(ci->name));
}

static long shmk_ioctl_clients(struct shmk_client *self, unsigned int cmd,
			       void __user *argp)
{
	struct shmk_segment *seg = self->seg;
	struct shmk_client_info *buf = NULL;
	struct shmk_client *client;
	struct shmk_clients req;
	u32 n = 0, cap;
	long ret = 0;

	ret = shmk_arg_in(&req, sizeof(req), cmd, argp);
	if (ret)
		return ret;
	if (req.flags || req.reserved0 ||
	    !shmk_zero(req.reserved, sizeof(req.reserved)))
		return -EINVAL;

	mutex_lock(&seg->lock);
	cap = min(req.count, seg->nr_clients);
	if (cap) {
		buf = kvmalloc_array(cap, sizeof(*buf), GFP_KERNEL);
		if (!buf) {
			mutex_unlock(&seg->lock);
			return -ENOMEM;
		}
	}
	list_for_each_entry(client, &seg->clients, node) {
		if (n == cap)
			break;
		shmk_fill_info(&buf[n++], client);
	}
	req.total = seg->nr_clients;
	mutex_unlock(&seg->lock);

	req.count = n;
	if (n && copy_to_user(u64_to_user_ptr(req.clients), buf,
			      n * sizeof(*buf)))
		ret = -EFAULT;
	else
		ret = shmk_arg_out(argp, &req, sizeof(req), cmd);
	kvfree(buf);
	return ret;
}

static long shmk_ioctl_lookup(struct shmk_client *self, unsigned int cmd,
			      void __user *argp)
{
	struct shmk_segment *seg = self->seg;
	struct shmk_client *client;
	struct shmk_lookup req;
	long ret;

	ret = shmk_arg_in(&req, sizeof(req), cmd, argp);
	if (ret)
		return ret;
	if (req.flags || req.reserved0 ||
	    !shmk_zero(req.reserved, sizeof(req.reserved)) ||
	    shmk_check_name(req.name, sizeof(req.name), SHMK_NAME_SLASH_OK))
		return -EINVAL;

	ret = -ENOENT;
	mutex_lock(&seg->lock);
	list_for_each_entry(client, &seg->clients, node) {
		if (!strcmp(client->name, req.name)) {
			req.pid = pid_vnr(client->pid);
			req.client_id = client->id;
			ret = 0;
			break;
		}
	}
	mutex_unlock(&seg->lock);
	if (!ret)
		ret = shmk_arg_out(argp, &req, sizeof(req), cmd);
	return ret;
}

static long shmk_client_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	struct shmk_client *client = file->private_data;
	void __user *argp = (void __user *)arg;

	if (READ_ONCE(client->kicked))
		return -ENOTCONN;
	if (shmk_ioc_is(cmd, SHMK_IOC_INFO))
		return shmk_ioctl_info(client, cmd, argp);
	if (shmk_ioc_is(cmd, SHMK_IOC_GROW))
		return shmk_ioctl_resize(client, SHMK_IOC_GROW, cmd, argp);
	if (shmk_ioc_is(cmd, SHMK_IOC_SHRINK))
		return shmk_ioctl_resize(client, SHMK_IOC_SHRINK, cmd, argp);
	if (shmk_ioc_is(cmd, SHMK_IOC_CLIENTS))
		return shmk_ioctl_clients(client, cmd, argp);
	if (shmk_ioc_is(cmd, SHMK_IOC_LOOKUP))
		return shmk_ioctl_lookup(client, cmd, argp);
	return -ENOTTY;
}

/*
 * posix_fadvise() on a handle: the generic version would act on the anon
 * inode's empty page cache. The segment's own pages are not file data to
 * read ahead or drop, so refuse, as for a pipe.
 */
static int shmk_client_fadvise(struct file *file, loff_t offset, loff_t len,
			       int advice)
{
	return -ESPIPE;
}

/*
 * No read, write, splice, fallocate or fsync: a handle is not a file of
 * data, and the syscalls fail with EINVAL, EOPNOTSUPP or ESPIPE. The
 * segment is reached through mmap() only.
 */
const struct file_operations shmk_client_fops = {
	.owner		= THIS_MODULE,
	.release	= shmk_client_release,
	.unlocked_ioctl	= shmk_client_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= shmk_mmap,
	/*
	 * mmap() without an address places a mapping of 2 MiB or more at an
	 * address congruent to its offset modulo 2 MiB, so that huge pages
	 * can be mapped by PMD (libshmk picks an aligned address itself).
	 */
	.get_unmapped_area = thp_get_unmapped_area,
	.fadvise	= shmk_client_fadvise,
	.llseek		= noop_llseek,
};

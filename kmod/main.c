// SPDX-License-Identifier: GPL-2.0
/*
 * shmk: named shared-memory segments that grow while in use, with the new
 * pages installed in every client's page tables before the grow returns.
 *
 * This file: the /dev/shmk control device, module parameters and the global
 * counters in sysfs.
 */
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "shmk.h"

unsigned long shmk_max_segment_size = 16UL << 30;
module_param_named(max_segment_size, shmk_max_segment_size, ulong, 0644);
MODULE_PARM_DESC(max_segment_size, "Largest max_size of a segment, bytes");

unsigned long shmk_max_pages;
module_param_named(max_pages, shmk_max_pages, ulong, 0644);
MODULE_PARM_DESC(max_pages,
		 "Active pages in all segments together (default: half of RAM)");

unsigned int shmk_max_segments = 4096;
module_param_named(max_segments, shmk_max_segments, uint, 0644);
MODULE_PARM_DESC(max_segments, "Segments that can exist at once");

unsigned long shmk_max_pages_per_user;
module_param_named(max_pages_per_user, shmk_max_pages_per_user, ulong, 0644);
MODULE_PARM_DESC(max_pages_per_user,
		 "Active pages in the segments one user created (default: a quarter of RAM)");

unsigned int shmk_max_segments_per_user = 256;
module_param_named(max_segments_per_user, shmk_max_segments_per_user, uint,
		   0644);
MODULE_PARM_DESC(max_segments_per_user,
		 "Segments one user can have created at once");

unsigned int shmk_max_clients = 64;
module_param_named(max_clients, shmk_max_clients, uint, 0644);
MODULE_PARM_DESC(max_clients, "Clients attached to one segment at once");

unsigned int shmk_grow_threads;
module_param_named(grow_threads, shmk_grow_threads, uint, 0644);
MODULE_PARM_DESC(grow_threads,
		 "CPUs one grow fills pages on at once (default 0: all online, at most 16)");

bool shmk_huge_pages = true;
module_param_named(huge_pages, shmk_huge_pages, bool, 0644);
MODULE_PARM_DESC(huge_pages,
		 "Back new segments with 2 MiB pages where possible (default Y)");

atomic_t shmk_nr_segments = ATOMIC_INIT(0);
atomic_long_t shmk_nr_pages = ATOMIC_LONG_INIT(0);
atomic_t shmk_nr_clients = ATOMIC_INIT(0);

static long shmk_ctl_unlink(unsigned int cmd, void __user *argp)
{
	struct shmk_unlink req;
	int ret;

	ret = shmk_arg_in(&req, sizeof(req), cmd, argp);
	if (ret)
		return ret;
	if (req.flags || req.reserved0 ||
	    memchr_inv(req.reserved, 0, sizeof(req.reserved)) ||
	    shmk_check_name(req.name, sizeof(req.name), 0))
		return -EINVAL;
	return shmk_segment_unlink(req.name);
}

static long shmk_ctl_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	if (shmk_ioc_is(cmd, SHMK_IOC_ATTACH))
		return shmk_ioctl_attach(cmd, argp);
	if (shmk_ioc_is(cmd, SHMK_IOC_UNLINK))
		return shmk_ctl_unlink(cmd, argp);
	return -ENOTTY;
}

static const struct file_operations shmk_ctl_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= shmk_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static ssize_t segments_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&shmk_nr_segments));
}
static DEVICE_ATTR_RO(segments);

static ssize_t pages_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&shmk_nr_pages));
}
static DEVICE_ATTR_RO(pages);

static ssize_t clients_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&shmk_nr_clients));
}
static DEVICE_ATTR_RO(clients);

static struct attribute *shmk_attrs[] = {
	&dev_attr_segments.attr,
	&dev_attr_pages.attr,
	&dev_attr_clients.attr,
	NULL,
};
ATTRIBUTE_GROUPS(shmk);

static struct miscdevice shmk_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "shmk",
	.fops	= &shmk_ctl_fops,
	.groups	= shmk_groups,
	.mode	= 0666,
};

static int __init shmk_init(void)
{
	int ret;

	shmk_limits_init();
	ret = shmk_shmfs_init();
	if (ret)
		return ret;
	ret = shmk_mmap_init();
	if (ret)
		goto err_shmfs;
	ret = shmk_genl_init();
	if (ret)
		goto err_mmap;
	ret = misc_register(&shmk_misc);
	if (ret)
		goto err_genl;
	return 0;

err_genl:
	shmk_genl_exit();
err_mmap:
	shmk_mmap_exit();
err_shmfs:
	shmk_shmfs_exit();
	return ret;
}

static void __exit shmk_exit(void)
{
	misc_deregister(&shmk_misc);
	shmk_genl_exit();
	/* No handle is open: only unlinked-by-nobody segments remain. */
	shmk_registry_exit();
	shmk_limits_exit();
	shmk_mmap_exit();
	shmk_shmfs_exit();
	WARN_ON(atomic_read(&shmk_nr_segments) ||
		atomic_long_read(&shmk_nr_pages) ||
		atomic_read(&shmk_nr_clients));
}

module_init(shmk_init);
module_exit(shmk_exit);

MODULE_DESCRIPTION("Growable shared-memory segments with peer mapping");
MODULE_LICENSE("GPL");

// SPDX-License-Identifier: GPL-2.0
/*
 * Boost.Interprocess for alloc_bench: managed_shared_memory as Boost ships
 * it (rbtree_best_fit<mutex_family>, iset_index), one segment per round in
 * /dev/shm, sized up front since it cannot grow while attached. No
 * exception leaves this file: failures become NULL or -1.
 */
#include <new>

#include <boost/interprocess/managed_shared_memory.hpp>

#include "alloc_impl.h"

namespace bip = boost::interprocess;

static bip::managed_shared_memory *seg_of(void *h)
{
	return static_cast<bip::managed_shared_memory *>(h);
}

static void *boost_create(const char *seg, size_t size)
{
	try {
		bip::shared_memory_object::remove(seg);
		return new bip::managed_shared_memory(bip::create_only, seg,
						      size);
	} catch (...) {
		return nullptr;
	}
}

static void *boost_open(const char *seg)
{
	try {
		return new bip::managed_shared_memory(bip::open_only, seg);
	} catch (...) {
		return nullptr;
	}
}

static void *boost_alloc(void *h, size_t size)
{
	return seg_of(h)->allocate(size, std::nothrow);
}

static void boost_free(void *h, void *p)
{
	seg_of(h)->deallocate(p);
}

static int boost_name_new(void *h, const char *name, uint64_t val)
{
	try {
		seg_of(h)->construct<uint64_t>(name)(val);
		return 0;
	} catch (...) {
		return -1;
	}
}

static uint64_t *boost_name_find(void *h, const char *name)
{
	try {
		return seg_of(h)->find<uint64_t>(name).first;
	} catch (...) {
		return nullptr;
	}
}

static int boost_check(void *h)
{
	try {
		return seg_of(h)->check_sanity() ? 0 : -1;
	} catch (...) {
		return -1;
	}
}

static void boost_close(void *h)
{
	delete seg_of(h);
}

static void boost_destroy(void *h, const char *seg)
{
	delete seg_of(h);
	bip::shared_memory_object::remove(seg);
}

/* Fixed when created: Boost cannot grow a segment others have mapped. */
static size_t boost_seg_size(void *h)
{
	return seg_of(h)->get_size();
}

extern "C" const struct alloc_impl boost_impl = {
	"boost",
	boost_create,
	boost_open,
	boost_alloc,
	boost_free,
	boost_name_new,
	boost_name_find,
	boost_check,
	boost_close,
	boost_destroy,
	boost_seg_size,
};

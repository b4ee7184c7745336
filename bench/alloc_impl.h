/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The allocators alloc_bench compares, behind one table of operations:
 * libshmk and glibc malloc in alloc_bench.c, Boost.Interprocess in
 * alloc_boost.cpp. Every implementation is called through this table, so
 * each pays the same indirect call per operation.
 */
#ifndef ALLOC_IMPL_H
#define ALLOC_IMPL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct alloc_impl {
	const char *name;
	/* Parent: create the shared heap @seg of (at most) @size bytes. */
	void *(*create)(const char *seg, size_t size);
	/* A worker: open @seg by name. */
	void *(*open)(const char *seg);
	void *(*alloc)(void *h, size_t size);
	void (*free)(void *h, void *p);
	/* Named objects: a uint64_t set to @val; 0 or -1. NULL: none. */
	int (*name_new)(void *h, const char *name, uint64_t val);
	uint64_t *(*name_find)(void *h, const char *name);
	/* Untimed consistency check after a round: 0 or -1. */
	int (*check)(void *h);
	/* A worker: close what open() gave. */
	void (*close)(void *h);
	/* Parent: close what create() gave and remove @seg. */
	void (*destroy)(void *h, const char *seg);
	/* Parent, after a round: the segment's size now. NULL: none. */
	size_t (*seg_size)(void *h);
};

/* alloc_boost.cpp */
extern const struct alloc_impl boost_impl;
/* alloc_floor.c: the page-map floor */
extern const struct alloc_impl floor_impl;

#ifdef __cplusplus
}
#endif

#endif /* ALLOC_IMPL_H */

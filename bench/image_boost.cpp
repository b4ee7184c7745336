// SPDX-License-Identifier: GPL-2.0
/*
 * Boost.Interprocess for image_bench: the rebuild that an image saves.
 * A managed_mapped_file of the segment's size, the same named objects
 * constructed in it (char arrays, their bytes written), then flush().
 * No exception leaves this file: a failure returns a negative time.
 */
#include <cstring>
#include <new>
#include <time.h>

#include <boost/interprocess/managed_mapped_file.hpp>

namespace bip = boost::interprocess;

static double now_s()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

extern "C" double image_boost_rebuild(const char *path, size_t size,
				      unsigned long n, const unsigned *sizes)
{
	try {
		double t = now_s();

		bip::file_mapping::remove(path);
		bip::managed_mapped_file f(bip::create_only, path, size);
		for (unsigned long i = 0; i < n; i++) {
			char name[32];

			snprintf(name, sizeof(name), "k%08lu", i);
			char *p = f.construct<char>(name)[sizes[i]](0);
			memset(p, (int)(i & 0xff), sizes[i]);
		}
		f.flush();
		t = now_s() - t;
		bip::file_mapping::remove(path);
		return t;
	} catch (...) {
		return -1;
	}
}

// SPDX-License-Identifier: MIT
/*
 * cache_image: build a dictionary once, map it on every later run.
 *
 *   cache_image [--image PATH] [--words N] [--keep] [WORD ...]
 *   cache_image --help
 *
 * The first run finds no image at PATH (default ./cache_image.img): the
 * segment is created empty (shmk_origin() says SHMK_ORIGIN_CREATED), so
 * it builds the dictionary (N words, default 200000, each mapped to its
 * number in a hash table of offsets in the segment), saves the image with
 * shmk_save() and looks the WORDs up. Every later run opens the segment
 * with the same opts.image: the image is checked and loaded
 * (SHMK_ORIGIN_IMAGE) and nothing is rebuilt. While one run keeps the
 * segment (--keep), others attach to it (SHMK_ORIGIN_ATTACHED).
 *
 * DICT_SCHEMA versions the layout of struct dict: change the struct, bump
 * it, and old images are refused (ESTALE) and rebuilt instead of being
 * misread. Try: cache_image; cache_image hello; truncate -s 100000
 * cache_image.img; cache_image hello (refused, rebuilt). With
 * SHMK_BACKEND=file the image file itself is the segment, shared by every
 * run through the page cache: built once, then synced (shmk_sync()).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmk.h>

#define DICT_SCHEMA	1	/* bump when struct dict or entry change */
#define SEGMENT		"cache_image"

struct entry {
	uint64_t next;		/* offset of the next entry in the bucket */
	uint64_t value;
	char word[];
};

struct dict {
	uint64_t nbuckets;
	uint64_t count;
	uint64_t bucket[];	/* offsets of entries, 0 for none */
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Words that read like words: syllables from a counter. */
static void make_word(uint64_t n, char *buf)
{
	static const char *syl[] = { "ka", "lo", "mi", "ne", "ru", "sa", "to",
				     "vi", "hel", "lo", "wor", "ld", "zen",
				     "qua", "bri", "dge" };

	buf[0] = '\0';
	do {
		strcat(buf, syl[n % 16]);
		n /= 16;
	} while (n);
}

static int build(struct shmk *h, uint64_t nwords)
{
	uint64_t nb = 1;
	struct dict *d;
	int created;

	while (nb < nwords)
		nb <<= 1;
	d = shmk_find_or_alloc(h, "dict", sizeof(*d) + nb * 8, &created);
	if (!d)
		return -errno;
	memset(d, 0, sizeof(*d) + nb * 8);
	d->nbuckets = nb;
	for (uint64_t i = 0; i < nwords; i++) {
		char w[64];
		struct entry *e;
		uint64_t b;

		make_word(i, w);
		e = shmk_alloc(h, sizeof(*e) + strlen(w) + 1);
		if (!e)
			return -errno;
		strcpy(e->word, w);
		e->value = i;
		b = hash(w) & (nb - 1);
		e->next = d->bucket[b];
		d->bucket[b] = shmk_off(h, e);
		d->count++;
	}
	return 0;
}

static const struct entry *lookup(struct shmk *h, const struct dict *d,
				  const char *w)
{
	uint64_t off = d->bucket[hash(w) & (d->nbuckets - 1)];

	while (off) {
		const struct entry *e = shmk_ptr(h, off);

		if (!strcmp(e->word, w))
			return e;
		off = e->next;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cache_image [--image PATH] [--words N] [--keep] [WORD ...]\n"
		"Build a dictionary in a shared segment once, save it as an image,\n"
		"and load the image on every later run instead of rebuilding.\n"
		"  --image PATH  the image (default ./cache_image.img)\n"
		"  --words N     words to build (default 200000)\n"
		"  --keep        leave the segment for other runs to attach to\n"
		"  --help        this help\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "words", required_argument, NULL, 'w' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct shmk_opts o = { .image = "cache_image.img",
			       .schema = DICT_SCHEMA, .size = 4 << 20 };
	uint64_t nwords = 200000;
	const struct dict *d;
	struct shmk *h;
	int c, r, keep = 0, file;
	char why[256];
	double t;

	while ((c = getopt_long(argc, argv, "i:w:kh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.image = optarg;
			break;
		case 'w':
			nwords = strtoull(optarg, NULL, 0);
			if (!nwords || nwords > 50000000) {
				fprintf(stderr, "cache_image: bad --words\n");
				return 2;
			}
			break;
		case 'k':
			keep = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	/* Why an existing image would not do (for the message only). */
	if (access(o.image, F_OK) == 0 &&
	    shmk_image_check(o.image, DICT_SCHEMA, why, sizeof(why)))
		printf("image %s refused: %s\n", o.image, why);

	t = now_ms();
	r = shmk_open(SEGMENT, SHMK_CREATE, &o, &h);
	if (r) {
		fprintf(stderr, "cache_image: shmk_open: %s%s\n", strerror(-r),
			r == -ENODEV ? "; load shmk.ko (modprobe shmk), or set "
				       "SHMK_BACKEND=posix" :
			r == -EADDRINUSE ? "; the other backend has a segment "
					   "of that name: use the same "
					   "SHMK_BACKEND everywhere" :
			r == -EACCES ? "; see the segment's or the image's "
				       "permissions" : "");
		return 1;
	}
	file = !strcmp(shmk_backend(h), "file");
	switch (shmk_origin(h)) {
	case SHMK_ORIGIN_CREATED:
		r = build(h, nwords);
		if (r) {
			fprintf(stderr, "cache_image: build: %s\n",
				strerror(-r));
			goto fail;
		}
		printf("built %llu words in %.1f ms\n",
		       (unsigned long long)nwords, now_ms() - t);
		t = now_ms();
		/* The file backend's segment is the image: sync it. */
		r = file ? shmk_sync(h) : shmk_save(h, o.image);
		if (r) {
			fprintf(stderr, "cache_image: save: %s\n",
				strerror(-r));
			goto fail;
		}
		printf("saved %s in %.1f ms\n", o.image, now_ms() - t);
		break;
	case SHMK_ORIGIN_IMAGE:
		printf("loaded %s in %.1f ms: nothing rebuilt\n", o.image,
		       now_ms() - t);
		break;
	default:
		printf("attached to the running segment in %.1f ms\n",
		       now_ms() - t);
		break;
	}

	d = shmk_find(h, "dict", NULL);
	if (!d) {
		fprintf(stderr, "cache_image: no dictionary in the segment\n");
		r = -ENOENT;
		goto fail;
	}
	printf("%llu words (%s backend, %zu MiB)\n",
	       (unsigned long long)d->count, shmk_backend(h),
	       shmk_size(h) >> 20);
	for (int i = optind; i < argc; i++) {
		const struct entry *e = lookup(h, d, argv[i]);

		if (e)
			printf("  %s = %llu\n", argv[i],
			       (unsigned long long)e->value);
		else
			printf("  %s: not in the dictionary\n", argv[i]);
	}
fail:
	shmk_close(h);
	if (!keep && !file)
		shmk_unlink(SEGMENT);
	return r ? 1 : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Segment images (shmk_save, shmk_image_check, shmk_open with opts.image):
 *
 *  - round trip: a segment with 10^5 objects of random sizes (some named,
 *    some freed again) saved and loaded into a new segment: the heap's
 *    bytes (every object, every free block and its links), the allocator
 *    and directory roots, the statistics, every name, all identical; the
 *    loaded segment allocates and frees as usual;
 *  - every compatibility check refuses its own mismatch with its own errno,
 *    in shmk_image_check() and in shmk_open(SHMK_IMAGE_ONLY), and without
 *    SHMK_IMAGE_ONLY the segment is created empty instead;
 *  - one flipped byte in each region (header, heap metadata, directory,
 *    data) is detected, and none is half loaded;
 *  - empty, short, garbage files, a directory and a missing file;
 *  - a saver SIGKILLed at every step leaves the previous image loadable;
 *  - processes attaching while an image loads see nothing or all of it.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"
#include "image.h"

static char dir[128], img[300];
static uint64_t nobj;

struct obj {
	uint64_t off;
	uint32_t size;
	uint32_t named;
};

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((seed * 0x9e3779b97f4a7c15ULL + i * 131) >> 24);
}

static int check_bytes(const uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)((seed * 0x9e3779b97f4a7c15ULL + i * 131) >> 24))
			return -1;
	return 0;
}

static struct obj *populate(struct shmk *h, uint64_t n)
{
	struct obj *o = calloc(n, sizeof(*o));

	CHECK(o);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t size = rnd_below(64) ? 1 + (uint32_t)rnd_below(2048)
					     : 1 + (uint32_t)rnd_below(40000);
		uint8_t *p;

		if (i % 8 == 0) {
			char name[32];
			int created;

			snprintf(name, sizeof(name), "obj-%" PRIu64, i);
			p = shmk_find_or_alloc(h, name, size, &created);
			CHECK(p && created);
			o[i].named = 1;
		} else {
			p = shmk_alloc(h, size);
			CHECK(p);
		}
		fill(p, size, i);
		o[i].off = shmk_off(h, p);
		o[i].size = size;
	}
	/* Free one in five (names too): free blocks and holes in runs. */
	for (uint64_t i = 0; i < n; i += 5) {
		if (o[i].named) {
			char name[32];

			snprintf(name, sizeof(name), "obj-%" PRIu64, i);
			CHECK_OK(shmk_remove(h, name));
		} else {
			shmk_free(h, shmk_ptr(h, o[i].off));
		}
		o[i].off = 0;
	}
	return o;
}

static void same_stats(struct shmk *a, struct shmk *b)
{
	struct shmk_stats x, y;

	CHECK_OK(shmk_stats(a, &x));
	CHECK_OK(shmk_stats(b, &y));
	x.clients = y.clients = 0;
	x.max_size = y.max_size = 0;
	x.recoveries = y.recoveries = 0;
	CHECK(!memcmp(&x, &y, sizeof(x)));
}

/* Segment a and b hold the same heap, header and names. */
static void same_segment(struct shmk *a, struct shmk *b, struct obj *o)
{
	const struct shmk_hdr *ha = shmk_base(a), *hb = shmk_base(b);
	uint8_t ma[SHMK_IMG_META_LEN] __attribute__((aligned(64)));
	uint8_t mb[SHMK_IMG_META_LEN] __attribute__((aligned(64)));

	CHECK_EQ(ha->heap_end, hb->heap_end);
	CHECK(!memcmp((uint8_t *)ha + SHMK_HEAP_START,
		      (uint8_t *)hb + SHMK_HEAP_START,
		      ha->heap_end - SHMK_HEAP_START));
	memcpy(ma, ha, sizeof(ma));
	memcpy(mb, hb, sizeof(mb));
	shmk__image_sanitize(ma);
	shmk__image_sanitize(mb);
	/* Allocator and directory state, not the session's fields. */
	CHECK(!memcmp(ma + offsetof(struct shmk_hdr, tx_state),
		      mb + offsetof(struct shmk_hdr, tx_state),
		      offsetof(struct shmk_hdr, pub_idx) -
			      offsetof(struct shmk_hdr, tx_state)));
	same_stats(a, b);
	CHECK_OK(shmk_check(b));
	for (uint64_t i = 0; i < nobj; i++) {
		uint8_t *p;
		size_t size;

		if (!o[i].off)
			continue;
		p = shmk_ptr(b, o[i].off);
		CHECK(p);
		CHECK_OK(check_bytes(p, o[i].size, i));
		if (o[i].named) {
			char name[32];

			snprintf(name, sizeof(name), "obj-%" PRIu64, i);
			CHECK(shmk_find(b, name, &size) == p);
			CHECK_EQ(size, o[i].size);
		}
	}
}

static struct shmk *open_img(const char *name, int flags, uint64_t schema,
			     int *err)
{
	struct shmk_opts op = { .image = img, .schema = schema };
	struct shmk *h = NULL;

	*err = shmk_open(name, SHMK_CREATE | SHMK_EXCL | flags, &op, &h);
	return h;
}

static void copy_file(const char *from, const char *to)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	CHECK_OK(system(cmd));
}

static void patch(const char *path, uint64_t off, const void *b, size_t n)
{
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void read_hdr(const char *path, struct shmk_image_hdr *ih)
{
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, ih, sizeof(*ih), 0), (ssize_t)sizeof(*ih));
	close(fd);
}

/* Rewrite the header with @ih, its CRC made right again. */
static void write_hdr(const char *path, struct shmk_image_hdr *ih)
{
	ih->crc_hdr = shmk__image_hdr_crc(ih);
	patch(path, 0, ih, sizeof(*ih));
}

/*
 * A random byte of the segment header page in image @path (after the
 * magic) where a flip of any bit changes the page: not in one of the
 * fields a load resets whatever the image says (the lock, the sequence
 * counts, the base address, the recovery bit; shmk__image_sanitize()),
 * which the CRC leaves out.
 */
static uint64_t meta_flip_off(const char *path)
{
	uint8_t *m = malloc(SHMK_IMG_META_LEN), *f = malloc(SHMK_IMG_META_LEN);
	struct shmk_image_hdr ih;
	uint64_t off;
	int fd;

	CHECK(m && f);
	read_hdr(path, &ih);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, m, SHMK_IMG_META_LEN, (off_t)ih.data_off),
		 (ssize_t)SHMK_IMG_META_LEN);
	close(fd);
	shmk__image_sanitize(m);
	for (;;) {
		unsigned int bit;

		off = 8 + rnd_below(1000);
		for (bit = 0; bit < 8; bit++) {	/* each bit the test may flip */
			memcpy(f, m, SHMK_IMG_META_LEN);
			f[off] ^= (uint8_t)(1u << bit);
			shmk__image_sanitize(f);
			if (!memcmp(f, m, SHMK_IMG_META_LEN))
				break;
		}
		if (bit == 8)
			break;
	}
	free(m);
	free(f);
	return off;
}

/*
 * @bad is refused with @err by the check and by SHMK_IMAGE_ONLY; without
 * it, the segment is created empty.
 */
static void expect_refused(const char *bad, uint64_t schema, int err,
			   const char *word)
{
	char why[256], seg[80];
	struct shmk *h;
	int r;

	r = shmk_image_check(bad, schema, why, sizeof(why));
	printf("  %-28s %4d  %s\n", word, r, why);
	CHECK_EQ(r, -err);
	CHECK(strlen(why) > 10);
	if (word[0] != '-')
		CHECK(strstr(why, word) != NULL);
	snprintf(img, sizeof(img), "%s", bad);
	snprintf(seg, sizeof(seg), "%s-x", test_segment);
	shmk_unlink(seg);
	h = open_img(seg, SHMK_IMAGE_ONLY, schema, &r);
	CHECK(!h);
	CHECK_EQ(r, -err);
	h = open_img(seg, 0, schema, &r);
	CHECK(h);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_CREATED);
	CHECK(!shmk_find(h, "obj-8", NULL));
	CHECK_OK(shmk_check(h));
	shmk_close(h);
	CHECK_OK(shmk_unlink(seg));
}

static void test_checks(const char *good_path)
{
	char bad[300], good[300];
	struct shmk_image_hdr ih, orig;
	uint8_t junk[4096];
	uint64_t u;
	int fd;

	snprintf(good, sizeof(good), "%s", good_path);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	read_hdr(good, &orig);
	printf("checks:\n");

	/* Files that are no image at all */
	unlink(bad);
	expect_refused(bad, 7, ENOENT, "cannot open");
	fd = open(bad, O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	close(fd);
	expect_refused(bad, 7, ENODATA, "empty");
	patch(bad, 0, "SHMKIMG", 7);
	expect_refused(bad, 7, ENODATA, "shorter");
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rnd();
	for (int i = 0; i < 256; i++)
		patch(bad, (uint64_t)i * sizeof(junk), junk, sizeof(junk));
	expect_refused(bad, 7, ENOMSG, "magic");
	expect_refused(dir, 7, EISDIR, "directory");

	/* Each field of the header */
	copy_file(good, bad);
	ih = orig;
	ih.magic[3] ^= 1;
	patch(bad, 0, &ih, sizeof(ih));
	expect_refused(bad, 7, ENOMSG, "magic");

	ih = orig;
	ih.byte_order = __builtin_bswap64(ih.byte_order);
	write_hdr(bad, &ih);
	expect_refused(bad, 7, ENOEXEC, "byte order");

	ih = orig;
	ih.version = SHMK_IMG_VERSION + 1;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, EPROTONOSUPPORT, "format version");

	ih = orig;
	ih.seg_name[0] ^= 0x20;		/* a byte the CRC alone covers */
	patch(bad, 0, &ih, sizeof(ih));
	expect_refused(bad, 7, EBADMSG, "header");

	ih = orig;
	ih.flags |= SHMK_IMG_F_LIVE;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, EBUSY, "file backend");

	ih = orig;
	u = 0;
	patch(bad, 0, &ih, sizeof(ih));
	patch(bad, offsetof(struct shmk_image_hdr, complete), &u, 8);
	expect_refused(bad, 7, EINPROGRESS, "incomplete");

	ih = orig;
	ih.page_size *= 2;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, EOPNOTSUPP, "pages");

	for (unsigned int f = 0; f < SHMK_IMG_NFACTS; f += 9) {
		ih = orig;
		ih.facts[f] += 8;
		write_hdr(bad, &ih);
		expect_refused(bad, 7, EPROTO, "layout fingerprint");
	}
	ih = orig;
	ih.fingerprint ^= 1;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, EPROTO, "layout fingerprint");

	ih = orig;
	ih.lib_major++;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, ELIBBAD, "libshmk");

	ih = orig;
	write_hdr(bad, &ih);
	expect_refused(bad, 8, ESTALE, "schema");

	ih = orig;
	ih.heap_end += 16;
	write_hdr(bad, &ih);
	expect_refused(bad, 7, EMSGSIZE, "inconsistent");

	ih = orig;
	write_hdr(bad, &ih);
	CHECK_OK(truncate(bad, (off_t)(orig.file_size - 1)));
	expect_refused(bad, 7, EMSGSIZE, "truncated");
	CHECK_OK(truncate(bad, (off_t)(orig.data_off + 100)));
	expect_refused(bad, 7, EMSGSIZE, "truncated");

	/* One flipped byte in each region */
	{
		struct {
			uint64_t off;
			const char *word;
		} flip[] = {
			{ 100, "header" },
			{ orig.data_off + meta_flip_off(good), "metadata" },
			{ orig.data_off + orig.dir_table +
				  rnd_below(orig.dir_len), "directory" },
			{ orig.data_off + orig.heap_end - 9, "data" },
			{ orig.data_off + SHMK_HEAP_START +
				  rnd_below(orig.dir_table - SHMK_HEAP_START),
			  "data" },
		};

		for (size_t i = 0; i < ARRAY_SIZE(flip); i++) {
			uint8_t b;
			int fd2;

			copy_file(good, bad);
			fd2 = open(bad, O_RDWR);
			CHECK(fd2 >= 0);
			CHECK_EQ(pread(fd2, &b, 1, (off_t)flip[i].off), 1);
			b ^= (uint8_t)(1u << rnd_below(8));
			CHECK_EQ(pwrite(fd2, &b, 1, (off_t)flip[i].off), 1);
			close(fd2);
			expect_refused(bad, 7, EBADMSG, flip[i].word);
		}
	}
	unlink(bad);
	snprintf(img, sizeof(img), "%s", good);
}

/* Save killed at each step: the old image stays whole and loadable. */
static void test_kill(struct shmk *h, const char *good)
{
	char seg[80];
	uint64_t *mark;
	int created, r;

	printf("killed saves:\n");
	mark = shmk_find_or_alloc(h, "mark", 8, &created);
	CHECK(mark);
	*mark = 1;
	CHECK_OK(shmk_save(h, good));
	*mark = 2;
	for (int step = 1; step <= 9; step++) {
		pid_t pid;
		struct shmk *l;
		uint64_t *m;

		fflush(stdout);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			char s[16];

			struct shmk_opts o7 = { .schema = 7 };
			struct shmk *c = NULL;

			/* Mappings are not inherited (MADV_DONTFORK). */
			if (shmk_open(test_segment, 0, &o7, &c))
				_exit(2);
			snprintf(s, sizeof(s), "%d", step);
			setenv("SHMK_IMAGE_KILL_STEP", s, 1);
			shmk_save(c, good);
			_exit(0);
		}
		CHECK_EQ(test_wait(pid), 128 + SIGKILL);
		CHECK_OK(shmk_image_check(good, 7, NULL, 0));
		snprintf(seg, sizeof(seg), "%s-k", test_segment);
		shmk_unlink(seg);
		l = open_img(seg, SHMK_IMAGE_ONLY, 7, &r);
		CHECK_OK(r);
		m = shmk_find(l, "mark", NULL);
		CHECK(m);
		printf("  killed at step %d: the image holds mark %" PRIu64 "\n",
		       step, *m);
		CHECK_EQ(*m, step < 9 ? 1 : 2);
		shmk_close(l);
		shmk_unlink(seg);
		/* Step 8 leaves the temporary name; nothing else does. */
		{
			char cmd[800];

			snprintf(cmd, sizeof(cmd),
				 "n=$(ls -a '%s' | grep -c '\\.tmp$'); "
				 "rm -f '%s'/*.tmp; test $n -eq %d", dir, dir,
				 step == 8 ? 1 : 0);
			CHECK_OK(system(cmd));
		}
	}
	*mark = 1;
	CHECK_OK(shmk_save(h, good));
}

/* Attachers during a load: ENOENT, or the whole segment. */
struct att {
	const char *seg;
	volatile int *go;
};

static int attacher(void *arg)
{
	struct att *a = arg;
	struct shmk *h = NULL;
	int r;

	while (!*a->go)
		sched_yield();
	for (int i = 0; i < 200000; i++) {
		r = shmk_open(a->seg, 0, NULL, &h);
		if (r == -ENOENT) {
			sched_yield();
			continue;
		}
		if (r) {
			fprintf(stderr, "attacher: %s\n", strerror(-r));
			return 2;
		}
		if (shmk_origin(h) != SHMK_ORIGIN_ATTACHED ||
		    !shmk_find(h, "obj-8", NULL) || shmk_check(h)) {
			fprintf(stderr, "attacher: a partial segment\n");
			return 3;
		}
		shmk_close(h);
		return 0;
	}
	return 4;
}

static void test_attach_while_loading(void)
{
	char seg[80];
	volatile int *go = test_shared(4096);
	struct att a = { seg, go };
	pid_t pids[3];
	struct shmk *h;
	int r;

	printf("attach while loading\n");
	snprintf(seg, sizeof(seg), "%s-a", test_segment);
	shmk_unlink(seg);
	for (int i = 0; i < 3; i++)
		pids[i] = test_fork(attacher, &a);
	*go = 1;
	h = open_img(seg, SHMK_IMAGE_ONLY, 7, &r);
	CHECK_OK(r);
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_IMAGE);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(test_wait(pids[i]), 0);
	shmk_close(h);
	shmk_unlink(seg);
}

/*
 * A queue saved while its receiver held it: the loaded queue has no
 * receiver (the saver's thread is not the loader's), keeps what was
 * queued, and takes a new receiver.
 */
static void test_queue_image(void)
{
	struct shmk_opts op = { .size = 1 << 20, .max_size = 64 << 20 };
	struct shmk_queue *r, *s, *r2;
	struct shmk_queue_stats st;
	char seg[80], seg2[80];
	struct shmk *h, *l;
	size_t sz;
	void *m;
	int e;

	snprintf(seg, sizeof(seg), "%s-q", test_segment);
	snprintf(seg2, sizeof(seg2), "%s-q2", test_segment);
	shmk_unlink(seg);
	shmk_unlink(seg2);
	CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &op, &h));
	CHECK_OK(shmk_queue_open(h, "jobs", SHMK_QUEUE_RECV, NULL, &r));
	CHECK_OK(shmk_queue_open(h, "jobs", 0, NULL, &s));
	for (int i = 0; i < 3; i++) {
		m = shmk_msg_alloc(h, 100);
		CHECK(m);
		memset(m, 'a' + i, 100);
		CHECK_OK(shmk_send(s, m, SHMK_NONBLOCK));
	}
	CHECK_OK(shmk_save(h, img));
	CHECK_OK(shmk_queue_close(s));

	l = open_img(seg2, SHMK_IMAGE_ONLY, 0, &e);
	CHECK_OK(e);
	CHECK_OK(shmk_queue_open(l, "jobs", 0, NULL, &s));
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.receiver_pid, 0);
	CHECK_EQ(st.queued, 3);
	m = shmk_msg_alloc(l, 8);
	CHECK(m);
	CHECK_EQ(shmk_send(s, m, SHMK_NONBLOCK), -ECONNRESET);
	shmk_msg_free(l, m);
	CHECK_OK(shmk_queue_open(l, "jobs", SHMK_QUEUE_RECV, NULL, &r2));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(shmk_recv(r2, &m, &sz, 0));
		CHECK_EQ(sz, 100);
		CHECK_EQ(((char *)m)[99], 'a' + i);
		shmk_msg_free(l, m);
	}
	CHECK_OK(shmk_queue_close(r2));
	CHECK_OK(shmk_queue_close(s));
	CHECK_OK(shmk_check(l));
	CHECK_OK(shmk_close(l));
	CHECK_OK(shmk_unlink(seg2));

	/* The original still has its receiver */
	CHECK_OK(shmk_queue_open(h, "jobs", 0, NULL, &s));
	CHECK_OK(shmk_queue_stats(s, &st));
	CHECK_EQ(st.receiver_pid, getpid());
	CHECK_OK(shmk_queue_close(s));
	CHECK_OK(shmk_queue_close(r));
	CHECK_OK(shmk_close(h));
	CHECK_OK(shmk_unlink(seg));
	unlink(img);
	printf("a queue saved with its receiver: loaded without one\n");
}

int main(void)
{
	struct shmk_opts op = { .size = 8 << 20, .max_size = 2ULL << 30,
				.schema = 7 };
	const char *seg;
	struct shmk *h, *l;
	struct obj *o;
	char seg2[80], why[256];
	uint64_t t0, t1, t2;
	int r;

	test_seed();
	seg = test_name("image");
	snprintf(dir, sizeof(dir), "/tmp/t-image-%d", (int)getpid());
	CHECK_OK(mkdir(dir, 0700));
	snprintf(img, sizeof(img), "%s/seg.img", dir);
	nobj = test_small() ? 3000 : 100000;

	CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &op, &h));
	CHECK_EQ(shmk_origin(h), SHMK_ORIGIN_CREATED);
	printf("backend %s, %" PRIu64 " objects\n", shmk_backend(h), nobj);
	o = populate(h, nobj);
	CHECK_OK(shmk_check(h));

	/* Round trip */
	t0 = shmk__clock_ns(CLOCK_MONOTONIC);
	CHECK_OK(shmk_save(h, img));
	t1 = shmk__clock_ns(CLOCK_MONOTONIC);
	r = shmk_image_check(img, 7, why, sizeof(why));
	if (r)
		printf("check: %s\n", why);
	CHECK_OK(r);
	snprintf(seg2, sizeof(seg2), "%s-2", seg);
	shmk_unlink(seg2);
	t2 = shmk__clock_ns(CLOCK_MONOTONIC);
	l = open_img(seg2, SHMK_IMAGE_ONLY, 7, &r);
	CHECK_OK(r);
	printf("save %.1f ms, load %.1f ms (%.1f MiB)\n", (t1 - t0) / 1e6,
	       (shmk__clock_ns(CLOCK_MONOTONIC) - t2) / 1e6,
	       ((struct shmk_hdr *)shmk_base(h))->heap_end / 1048576.0);
	CHECK_EQ(shmk_origin(l), SHMK_ORIGIN_IMAGE);
	CHECK(shmk_base(l) != shmk_base(h));
	same_segment(h, l, o);
	/* And it goes on as a heap: the same operations, the same result. */
	for (int i = 0; i < 2000; i++) {
		size_t sz = 1 + rnd_below(20000);
		void *p = shmk_alloc(h, sz), *q = shmk_alloc(l, sz);

		CHECK(p && q && shmk_off(h, p) == shmk_off(l, q));
		if (i % 3 == 0) {
			shmk_free(h, p);
			shmk_free(l, q);
		}
	}
	CHECK_OK(shmk_check(l));
	same_stats(h, l);
	/* The loaded one saves the same image again. */
	shmk_close(l);
	CHECK_OK(shmk_unlink(seg2));
	/* An existing segment: the image is not looked at. */
	l = NULL;
	{
		struct shmk_opts o2 = { .image = img, .schema = 7 };

		CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_IMAGE_ONLY, &o2, &l));
		CHECK_EQ(shmk_origin(l), SHMK_ORIGIN_ATTACHED);
		shmk_close(l);
		CHECK_ERR(shmk_open(seg, SHMK_IMAGE_ONLY, &o2, &l), EINVAL);
		o2.image = NULL;
		CHECK_ERR(shmk_open(seg, SHMK_CREATE | SHMK_IMAGE_ONLY, &o2,
				    &l), EINVAL);
	}
	CHECK_ERR(shmk_save(NULL, img), EINVAL);
	CHECK_ERR(shmk_save(h, ""), EINVAL);
	CHECK(shmk_save(h, "/nonexistent-dir/x.img") < 0);
	CHECK_ERR(shmk_image_check(NULL, 0, why, sizeof(why)), EINVAL);
	CHECK_ERR(shmk_sync(NULL), EINVAL);
	CHECK_ERR(shmk_sync(h), EOPNOTSUPP);
	CHECK_ERR(shmk_origin(NULL), EINVAL);

	/* A reader saves under the sequence count. */
	{
		struct shmk *rd = NULL;
		char img2[320];

		CHECK_OK(shmk_open(seg, SHMK_RDONLY, NULL, &rd));
		snprintf(img2, sizeof(img2), "%s/rd.img", dir);
		CHECK_OK(shmk_save(rd, img2));
		CHECK_OK(shmk_image_check(img2, 0, NULL, 0));
		shmk_close(rd);
		unlink(img2);
	}

	test_attach_while_loading();
	test_queue_image();
	free(o);
	shmk_close(h);
	CHECK_OK(shmk_unlink(seg));

	/* The checks on a small image: each of them loads it twice. */
	nobj = 2000;
	CHECK_OK(shmk_open(seg, SHMK_CREATE | SHMK_EXCL, &op, &h));
	o = populate(h, nobj);
	CHECK_OK(shmk_save(h, img));
	test_checks(img);
	test_kill(h, img);
	free(o);
	shmk_close(h);
	unlink(img);
	CHECK_OK(rmdir(dir));
	printf("ok\n");
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * shmkctl save, load and image-info: segment images (shmk_save(3)). These
 * use libshmk (linked statically) and the image format's definition
 * (lib/src/image.h), not the netlink family: they work on every backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "directory.h"
#include "json.h"
#include "shmkctl_image.h"

static void img_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void img_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmkctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *n;
	} t[] = {
		{ EINVAL, "EINVAL" }, { EISDIR, "EISDIR" }, { ENOENT, "ENOENT" },
		{ EACCES, "EACCES" }, { ENODATA, "ENODATA" },
		{ ENOMSG, "ENOMSG" }, { ENOEXEC, "ENOEXEC" },
		{ EPROTONOSUPPORT, "EPROTONOSUPPORT" }, { EBADMSG, "EBADMSG" },
		{ EBUSY, "EBUSY" }, { EINPROGRESS, "EINPROGRESS" },
		{ EOPNOTSUPP, "EOPNOTSUPP" }, { EPROTO, "EPROTO" },
		{ ELIBBAD, "ELIBBAD" }, { ESTALE, "ESTALE" },
		{ EMSGSIZE, "EMSGSIZE" }, { ENOMEM, "ENOMEM" }, { EIO, "EIO" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].e == e)
			return t[i].n;
	return "E?";
}

/* A schema given with --schema, else the image's own. */
static int image_schema(const char *path, const struct shmk_image_opts *o,
			uint64_t *schema)
{
	struct shmk_image_hdr ih;
	int fd;

	if (o->schema_given) {
		*schema = o->schema;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (pread(fd, &ih, sizeof(ih), 0) != (ssize_t)sizeof(ih)) {
		close(fd);
		*schema = 0;
		return 0;	/* the check says what is wrong */
	}
	close(fd);
	*schema = ih.schema;
	return 0;
}

static int cmd_save(const char *seg, const char *path,
		    const struct shmk_image_opts *o)
{
	struct shmk_opts so = { .schema = o->schema, .client_name = "shmkctl" };
	struct shmk *h;
	int r = shmk_open(seg, 0, &so, &h);

	if (r) {
		img_err("cannot open segment %s: %s", seg, strerror(-r));
		return 1;
	}
	r = shmk_save(h, path);
	shmk_close(h);
	if (r) {
		img_err("cannot save %s to %s: %s", seg, path, strerror(-r));
		return 1;
	}
	printf("saved %s to %s\n", seg, path);
	return 0;
}

static int cmd_load(const char *path, const char *seg,
		    const struct shmk_image_opts *o)
{
	struct shmk_opts so = { .image = path, .client_name = "shmkctl" };
	struct shmk_image_hdr ih;
	char why[256], name[SHMK_NAME_MAX];
	struct shmk_stats st;
	struct shmk *h;
	int r, fd;

	r = image_schema(path, o, &so.schema);
	if (!r)
		r = shmk_image_check(path, so.schema, why, sizeof(why));
	if (r) {
		img_err("%s: %s (%s)", path, r == -ENOENT ? strerror(-r) : why,
			errno_name(-r));
		return 1;
	}
	if (!seg) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, &ih, sizeof(ih), 0) != sizeof(ih)) {
			img_err("%s: cannot read the header", path);
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
		memcpy(name, ih.seg_name, sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		seg = name;
	}
	r = shmk_open(seg, SHMK_CREATE | SHMK_EXCL | SHMK_IMAGE_ONLY, &so, &h);
	if (r) {
		img_err("cannot load %s into segment %s: %s", path, seg,
			strerror(-r));
		return 1;
	}
	r = shmk_stats(h, &st);
	printf("loaded %s into %s (%s backend): %" PRIu64 " bytes, %" PRIu64
	       " named objects\n", path, seg, shmk_backend(h),
	       r ? 0 : st.total_size, r ? 0 : st.named_objects);
	shmk_close(h);
	return 0;
}

/*
 * The directory, read from the file with every offset bounds-checked: its
 * control bytes a group at a time, then each full slot's offset and entry.
 */
static void list_objects(int fd, const struct shmk_image_hdr *ih, bool json)
{
	uint64_t cap = ih->dir_len / DIR_SLOT_BYTES, n = 0;
	uint64_t end = ih->heap_end, base = ih->data_off + ih->dir_table;

	if (json)
		printf(",\n  \"objects\": [");
	else
		printf("named objects:\n");
	if (cap < DIR_MIN_CAP || (cap & (cap - 1)) ||
	    cap * DIR_SLOT_BYTES != ih->dir_len)
		cap = 0;
	for (uint64_t i = 0; i < cap; i++) {
		struct shmk_dir_entry de;
		char nm[SHMK_OBJ_NAME_MAX];
		uint8_t ctrl[DIR_GROUP];
		uint64_t e, obj;
		uint32_t o;

		if (i % DIR_GROUP == 0 &&
		    pread(fd, ctrl, sizeof(ctrl), (off_t)(base + i)) !=
		    (ssize_t)sizeof(ctrl))
			break;
		if (ctrl[i % DIR_GROUP] & 0x80)
			continue;
		if (pread(fd, &o, sizeof(o), (off_t)(base + cap + 4 * i)) !=
		    (ssize_t)sizeof(o))
			break;
		e = (uint64_t)o * BLK_ALIGN;
		if (e < SHMK_HEAP_START || e + sizeof(de) > end ||
		    pread(fd, &de, sizeof(de), (off_t)(ih->data_off + e)) !=
		    (ssize_t)sizeof(de) ||
		    de.magic != (DIR_ENTRY_MAGIC ^ o) || !de.name_len ||
		    de.name_len >= SHMK_OBJ_NAME_MAX ||
		    e + sizeof(de) + de.name_len > end ||
		    pread(fd, nm, de.name_len,
			  (off_t)(ih->data_off + e + sizeof(de))) !=
		    (ssize_t)de.name_len)
			continue;
		obj = e + dir_obj_delta(de.name_len);
		if (json) {
			printf("%s\n    {\"name\": ", n ? "," : "");
			json_strn(stdout, nm, de.name_len);
			printf(", \"offset\": %" PRIu64 ", \"size\": %" PRIu64 "}",
			       obj, de.size);
		} else {
			printf("  %-40.*s offset %-12" PRIu64 " size %" PRIu64
			       "\n", (int)de.name_len, nm, obj, de.size);
		}
		n++;
	}
	if (json)
		printf("%s]", n ? "\n  " : "");
}

static int cmd_info(const char *path, const struct shmk_image_opts *o)
{
	struct shmk_image_hdr ih;
	char why[256] = "", when[64] = "?", name[65];
	uint64_t schema;
	struct tm tm;
	time_t t;
	int r, fd;
	bool have;

	r = image_schema(path, o, &schema);
	if (!r)
		r = shmk_image_check(path, schema, why, sizeof(why));
	if (r == -ENOENT || r == -EACCES || r == -EISDIR) {
		img_err("%s: %s", path, why);
		return 1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	have = fd >= 0 && pread(fd, &ih, sizeof(ih), 0) == sizeof(ih) &&
	       !memcmp(ih.magic, SHMK_IMG_MAGIC, 8);
	if (have) {
		t = (time_t)(ih.save_time_ns / 1000000000ULL);
		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z",
				 &tm);
		memcpy(name, ih.seg_name, 64);
		name[64] = '\0';
	}
	if (o->json) {
		printf("{\n  \"path\": ");
		json_str(stdout, path);
		printf(",\n  \"loadable\": %s,\n  \"error\": %s%s%s,\n  \"why\": ",
		       r ? "false" : "true", r ? "\"" : "",
		       r ? errno_name(-r) : "null", r ? "\"" : "");
		json_str(stdout, why);
		if (have) {
			printf(",\n  \"format_version\": %u,\n  \"byte_order\": "
			       "\"%s\",\n  \"page_size\": %u,\n"
			       "  \"library_version\": \"%u.%u.%u\",\n"
			       "  \"schema\": %" PRIu64 ",\n"
			       "  \"fingerprint\": \"%08x\",\n"
			       "  \"live\": %s,\n  \"complete\": %s,\n"
			       "  \"segment\": ",
			       ih.version, ih.byte_order == SHMK_IMG_BYTE_ORDER ?
			       "native" : "foreign", ih.page_size, ih.lib_major,
			       ih.lib_minor, ih.lib_patch, ih.schema,
			       ih.fingerprint,
			       ih.flags & SHMK_IMG_F_LIVE ? "true" : "false",
			       ih.complete == SHMK_IMG_COMPLETE ? "true" : "false");
			json_str(stdout, name);
			printf(",\n  \"saved_ns\": %" PRIu64 ",\n"
			       "  \"file_size\": %" PRIu64 ",\n"
			       "  \"data_offset\": %" PRIu64 ",\n"
			       "  \"segment_size\": %" PRIu64 ",\n"
			       "  \"max_size\": %" PRIu64 ",\n"
			       "  \"heap_end\": %" PRIu64 ",\n"
			       "  \"directory_offset\": %" PRIu64 ",\n"
			       "  \"directory_bytes\": %" PRIu64 ",\n"
			       "  \"named_objects\": %" PRIu64 ",\n"
			       "  \"live_allocs\": %" PRIu64 ",\n"
			       "  \"used_bytes\": %" PRIu64 ",\n"
			       "  \"crc32c\": {\"header\": \"%08x\", \"metadata\": "
			       "\"%08x\", \"directory\": \"%08x\", \"data\": "
			       "\"%08x\"}", ih.save_time_ns, ih.file_size,
			       ih.data_off, ih.seg_size, ih.max_size,
			       ih.heap_end, ih.dir_table, ih.dir_len,
			       ih.named_objects, ih.live_allocs, ih.used_bytes,
			       ih.crc_hdr, ih.crc_meta, ih.crc_dir, ih.crc_data);
			if (!r)
				list_objects(fd, &ih, true);
		}
		printf("\n}\n");
	} else {
		printf("image:           %s\n", path);
		printf("check:           %s%s%s%s\n", r ? "refused, " : "loadable",
		       r ? errno_name(-r) : "", r ? ": " : "", why);
		if (have) {
			printf("format:          version %u, %s byte order, "
			       "%u-byte pages\n", ih.version,
			       ih.byte_order == SHMK_IMG_BYTE_ORDER ?
			       "native" : "foreign", ih.page_size);
			printf("written by:      libshmk %u.%u.%u, layout "
			       "fingerprint %08x\n", ih.lib_major, ih.lib_minor,
			       ih.lib_patch, ih.fingerprint);
			printf("schema:          %" PRIu64 "\n", ih.schema);
			printf("segment:         %s, saved %s%s%s\n", name, when,
			       ih.flags & SHMK_IMG_F_LIVE ?
			       ", file backend, attached" : "",
			       ih.complete == SHMK_IMG_COMPLETE ? "" :
			       ", INCOMPLETE");
			printf("sizes:           file %" PRIu64 ", data at %"
			       PRIu64 ", segment %" PRIu64 " of %" PRIu64
			       ", heap end %" PRIu64 "\n", ih.file_size,
			       ih.data_off, ih.seg_size, ih.max_size,
			       ih.heap_end);
			printf("directory:       %" PRIu64 " bytes at %" PRIu64
			       ", %" PRIu64 " named objects\n", ih.dir_len,
			       ih.dir_table, ih.named_objects);
			printf("heap:            %" PRIu64 " allocations, %" PRIu64
			       " bytes used\n", ih.live_allocs, ih.used_bytes);
			printf("crc32c:          header %08x, metadata %08x, "
			       "directory %08x, data %08x\n", ih.crc_hdr,
			       ih.crc_meta, ih.crc_dir, ih.crc_data);
			if (!r)
				list_objects(fd, &ih, false);
		}
	}
	if (fd >= 0)
		close(fd);
	return r ? 1 : 0;
}

int shmkctl_image(const char *cmd, int nargs, char **args,
		  const struct shmk_image_opts *o)
{
	if (!strcmp(cmd, "save"))
		return cmd_save(args[0], args[1], o);
	if (!strcmp(cmd, "load"))
		return cmd_load(args[0], nargs > 1 ? args[1] : NULL, o);
	return cmd_info(args[0], o);
}

/* SPDX-License-Identifier: GPL-2.0 */
/* shmkctl save, load, image-info (image.c), linked with libshmk. */
#ifndef SHMKCTL_IMAGE_H
#define SHMKCTL_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

struct shmk_image_opts {
	bool json;
	bool schema_given;
	uint64_t schema;	/* --schema */
};

/* cmd: "save" SEG PATH, "load" PATH [SEG], "image-info" PATH; exit status */
int shmkctl_image(const char *cmd, int nargs, char **args,
		  const struct shmk_image_opts *o);

#endif

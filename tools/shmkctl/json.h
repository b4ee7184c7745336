/* SPDX-License-Identifier: GPL-2.0 */
/* shmkctl's JSON strings (json.c), for every command that prints JSON. */
#ifndef SHMKCTL_JSON_H
#define SHMKCTL_JSON_H

#include <stddef.h>
#include <stdio.h>

/* @n bytes of @s as a JSON string: quotes, backslashes, control and
 * non-ASCII bytes escaped. */
void json_strn(FILE *f, const char *s, size_t n);
void json_str(FILE *f, const char *s);

#endif

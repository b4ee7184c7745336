/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmkctl queues (queues.c): the message queues of segment @seg, as a
 * table or as JSON. Returns the exit status.
 */
#ifndef SHMKCTL_QUEUES_H
#define SHMKCTL_QUEUES_H

#include <stdbool.h>

int shmkctl_queues(const char *seg, bool json);

#endif

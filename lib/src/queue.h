/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Message queues as named objects (queue.c): the directory name of the
 * queue called NAME is QUEUE_PREFIX NAME. shmkctl's queues command lists
 * them by this prefix.
 */
#ifndef SHMK_QUEUE_H
#define SHMK_QUEUE_H

#define QUEUE_PREFIX		"shmk.queue/"

#endif

/*
 * dlist.h - intrusive doubly linked lists: the LRUs and tables whose
 * elements carry their own two links (the block cache's index LRU and its
 * open descriptors, the listing cache's LRU, the times table, the reader's
 * in-flight table, the writer's files, the open handles). A list is the
 * caller's pair of end pointers, `first` and `last` (or `first` alone);
 * the link fields are named by the caller: `to_first` points towards
 * `first`, `to_last` towards `last`. Macros, so each list keeps its element
 * type (no casts, no container_of); every argument is a plain lvalue,
 * evaluated more than once. Not thread-safe: callers hold their lock.
 */
#ifndef LAKEFUSE_DLIST_H
#define LAKEFUSE_DLIST_H

#include <stddef.h>

/* e, not on the list, becomes its first element. */
#define DLIST_PUSH_FIRST(first, last, e, to_first, to_last)                   \
    do {                                                                      \
        (e)->to_first = NULL;                                                 \
        (e)->to_last = (first);                                               \
        if ((first) != NULL)                                                  \
            (first)->to_first = (e);                                          \
        else                                                                  \
            (last) = (e);                                                     \
        (first) = (e);                                                        \
    } while (0)

/* e, on the list, leaves it; its links are cleared. */
#define DLIST_UNLINK(first, last, e, to_first, to_last)                       \
    do {                                                                      \
        if ((e)->to_first != NULL)                                            \
            (e)->to_first->to_last = (e)->to_last;                            \
        else                                                                  \
            (first) = (e)->to_last;                                           \
        if ((e)->to_last != NULL)                                             \
            (e)->to_last->to_first = (e)->to_first;                           \
        else                                                                  \
            (last) = (e)->to_first;                                           \
        (e)->to_first = (e)->to_last = NULL;                                  \
    } while (0)

/* The same for a list that keeps only its first element. */
#define DLIST_HEAD_PUSH(first, e, to_first, to_last)                          \
    do {                                                                      \
        (e)->to_first = NULL;                                                 \
        (e)->to_last = (first);                                               \
        if ((first) != NULL)                                                  \
            (first)->to_first = (e);                                          \
        (first) = (e);                                                        \
    } while (0)

#define DLIST_HEAD_UNLINK(first, e, to_first, to_last)                        \
    do {                                                                      \
        if ((e)->to_first != NULL)                                            \
            (e)->to_first->to_last = (e)->to_last;                            \
        else if ((first) == (e))                                              \
            (first) = (e)->to_last;                                           \
        if ((e)->to_last != NULL)                                             \
            (e)->to_last->to_first = (e)->to_first;                           \
        (e)->to_first = (e)->to_last = NULL;                                  \
    } while (0)

#endif

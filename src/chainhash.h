/*
 * chainhash.h - the growth step of the daemon's chained hash tables (the
 * block cache's index, the listing cache, the times table, the writer's
 * files): every element moves to the head of its bucket in a new, larger
 * array. A macro over the caller's element type and link field, as
 * dlist.h's lists are, so each table keeps its type. Not thread-safe:
 * callers hold their lock.
 */
#ifndef LAKEFUSE_CHAINHASH_H
#define LAKEFUSE_CHAINHASH_H

#include <stddef.h>

/* Moves the elements chained (through field `link`) in old[0..old_n) into
 * fresh, a zeroed array: each to the head of fresh[bucket], where bucket is
 * an expression of the element, named e by the caller. old is left as it
 * was, its chains broken: the caller frees it. */
#define CHAIN_REHASH(type, e, link, old, old_n, fresh, bucket)                \
    do {                                                                      \
        for (size_t chain_i_ = 0; chain_i_ < (old_n); chain_i_++) {           \
            type *e = (old)[chain_i_];                                        \
            while (e != NULL) {                                               \
                type *chain_next_ = e->link;                                  \
                type **chain_head_ = &(fresh)[bucket];                        \
                e->link = *chain_head_;                                       \
                *chain_head_ = e;                                             \
                e = chain_next_;                                              \
            }                                                                 \
        }                                                                     \
    } while (0)

#endif

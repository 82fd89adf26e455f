/*
 * strset.h - a set of strings (add, look up, remove) in an open
 * addressing hash table: O(1) lookups for sets that are read far more
 * often than written (tree.c's noted special modes, looked up for every
 * listed entry carrying such bits). No locking inside.
 */
#ifndef LAKEFUSE_STRSET_H
#define LAKEFUSE_STRSET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strset {
    char **slots; /* NULL: empty; n_slots a power of 2, at most half full */
    size_t n_slots, count;
} strset;

/* Whether s holds str. */
bool strset_contains(const strset *s, const char *str);
/* Adds str, taking ownership of it (freed at once if s already holds an
 * equal string): 0, or -ENOMEM (str freed, s unchanged). */
int strset_add_owned(strset *s, char *str);
/* Removes str (and frees the set's copy) when it is a member. */
void strset_remove(strset *s, const char *str);
/* Frees the strings and the table; s is empty again. */
void strset_clear(strset *s);

#endif

/*
 * strset.c - see strset.h.
 */
#include "strset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t str_hash(const char *str)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding str, or the empty slot where it would go. */
static size_t slot_of(char *const *slots, size_t n_slots, const char *str)
{
    size_t i = (size_t)str_hash(str) & (n_slots - 1);
    while (slots[i] != NULL && strcmp(slots[i], str) != 0)
        i = (i + 1) & (n_slots - 1);
    return i;
}

bool strset_contains(const strset *s, const char *str)
{
    return s->count > 0 && str != NULL &&
           s->slots[slot_of(s->slots, s->n_slots, str)] != NULL;
}

static int grow(strset *s)
{
    size_t n = s->n_slots ? s->n_slots * 2 : 16;
    char **slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i] != NULL)
            slots[slot_of(slots, n, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->n_slots = n;
    return 0;
}

int strset_add_owned(strset *s, char *str)
{
    if (str == NULL)
        return -ENOMEM;
    if (strset_contains(s, str)) {
        free(str);
        return 0;
    }
    if ((s->count + 1) * 2 > s->n_slots && grow(s) != 0) {
        free(str);
        return -ENOMEM;
    }
    s->slots[slot_of(s->slots, s->n_slots, str)] = str;
    s->count++;
    return 0;
}

void strset_remove(strset *s, const char *str)
{
    if (!strset_contains(s, str))
        return;
    size_t mask = s->n_slots - 1;
    size_t hole = slot_of(s->slots, s->n_slots, str);
    free(s->slots[hole]);
    s->slots[hole] = NULL;
    s->count--;
    /* Linear probing: a later member of the run whose home is not
     * cyclically after the hole moves into it, or lookups would stop at
     * the hole before reaching it. */
    for (size_t j = (hole + 1) & mask; s->slots[j] != NULL;
         j = (j + 1) & mask) {
        size_t home = (size_t)str_hash(s->slots[j]) & mask;
        bool stays = hole <= j ? (hole < home && home <= j)
                               : (hole < home || home <= j);
        if (stays)
            continue;
        s->slots[hole] = s->slots[j];
        s->slots[j] = NULL;
        hole = j;
    }
}

void strset_clear(strset *s)
{
    for (size_t i = 0; i < s->n_slots; i++)
        free(s->slots[i]);
    free(s->slots);
    s->slots = NULL;
    s->n_slots = s->count = 0;
}

/*
 * staging_journal.c - libFuzzer target: the staging journal reader
 * (staging_journal_parse in src/staging_journal.c), which reads what a
 * crashed or foreign mount left in the cache directory. A bad journal is
 * -EINVAL with a reason and nothing allocated; a good one names a repo,
 * branch and path, a known state, and an error exactly when it failed.
 */
#include "fuzz.h"

#include "staging_internal.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader hands the parser a NUL-terminated copy of the file. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    staging_entry e;
    memset(&e, 0, sizeof(e));
    const char *why = NULL;
    int rc = staging_journal_parse(text, size, &e, &why);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(e.repo && e.branch && e.path);
        FUZZ_CHECK(staging_state_valid(e.state));
        FUZZ_CHECK((e.error != NULL) ==
                   (e.state == STAGING_FAILED || e.state == STAGING_CONFLICT));
        FUZZ_CHECK(e.n_attempts <= STAGING_MAX_ATTEMPTS);
        FUZZ_CHECK(!e.sealed || e.digest);
        FUZZ_CHECK(e.sealed_size >= 0);
    } else {
        FUZZ_CHECK(why != NULL || rc == -ENOMEM);
        FUZZ_CHECK(!e.repo && !e.branch && !e.path && !e.error);
        FUZZ_CHECK(!e.attempts && !e.base && !e.digest && !e.metadata.items);
    }
    staging_entry_clear(&e);
    free(text);
    return 0;
}

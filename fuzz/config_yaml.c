/*
 * config_yaml.c - libFuzzer target: the lakectl YAML configuration loader
 * (src/config.c, libyaml) on arbitrary file contents. The bytes go to a
 * memfd read back through /proc/self/fd, so nothing touches the disk. A
 * bad file is -EINVAL with a reason and no values; a good one gives
 * strings or NULLs. LAKECTL_* and HOME are cleared so only the file counts.
 */
#include "fuzz.h"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("LAKECTL_SERVER_ENDPOINT_URL");
    unsetenv("LAKECTL_CREDENTIALS_ACCESS_KEY_ID");
    unsetenv("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY");
    unsetenv("HOME");
    memfd = memfd_create("lakectl.yaml", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) != 0 ||
        (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
    lakefuse_config_flags flags = {.config_file = path};
    lakefuse_config cfg;
    char errbuf[256];
    int rc = config_load(&cfg, &flags, errbuf, sizeof(errbuf));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    FUZZ_CHECK(memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
    if (rc == 0) {
        FUZZ_CHECK(cfg.source_file && strcmp(cfg.source_file, path) == 0);
    } else {
        FUZZ_CHECK(errbuf[0] != '\0');
        FUZZ_CHECK(!cfg.endpoint && !cfg.access_key_id &&
                   !cfg.secret_access_key && !cfg.source_file);
    }
    config_free(&cfg);
    return 0;
}

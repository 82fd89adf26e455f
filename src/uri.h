/*
 * uri.h - the lakefs:// URIs lakefuse mounts, in lakectl's form:
 * lakefs:// (every repository), lakefs://REPO (every ref of one
 * repository), lakefs://REPO/REF[/PREFIX] (one ref, optionally a sub-tree).
 * Parsing only: whether the repository and ref exist is asked of lakeFS.
 */
#ifndef LAKEFUSE_URI_H
#define LAKEFUSE_URI_H

#include <stddef.h>

typedef struct lakefuse_uri {
    char *repo;   /* NULL: every repository */
    char *ref;    /* NULL: every ref of repo */
    char *prefix; /* "" or "dir/sub/" (always ends in '/'); NULL without ref */
} lakefuse_uri;

/* 0, or -EINVAL with a one-line reason in errbuf. */
int uri_parse(const char *text, lakefuse_uri *out, char *errbuf,
              size_t errlen);
void uri_free(lakefuse_uri *uri);

/* lakeFS repository ids: ^[a-z0-9][a-z0-9-]{2,62}$ */
int uri_valid_repository_name(const char *name);

#endif
